# Apache Kafka from the jars on Maven Central, on Debian's JRE (stands in for
# apache/kafka). /etc/kafka/docker/run reads the same KAFKA_* variables.
ARG BASE
FROM ${BASE}
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        openjdk-17-jre-headless openssl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 1000 --create-home --shell /bin/bash appuser \
 && install -d -o appuser -g appuser /var/lib/kafka/data /opt/kafka/config /etc/kafka/docker
COPY libs /opt/kafka/libs
COPY bin/run /etc/kafka/docker/run
COPY bin/log4j2.properties /opt/kafka/config/log4j2.properties
RUN chmod 0755 /etc/kafka/docker/run
USER appuser
EXPOSE 9092
CMD ["/etc/kafka/docker/run"]
