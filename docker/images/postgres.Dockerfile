# PostgreSQL from Debian's packages (stands in for postgres:*-bookworm): the entry
# honours POSTGRES_USER, POSTGRES_DB and POSTGRES_PASSWORD_FILE as the official image does.
ARG BASE
FROM ${BASE}
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o postgres -g postgres /var/lib/postgresql/data /var/run/postgresql
COPY entry.sh /usr/local/bin/entry.sh
RUN chmod 0755 /usr/local/bin/entry.sh \
 && ln -s /usr/lib/postgresql/*/bin/pg_isready /usr/local/bin/pg_isready
USER postgres
ENV PGDATA=/var/lib/postgresql/data
EXPOSE 5432
CMD ["/usr/local/bin/entry.sh"]
