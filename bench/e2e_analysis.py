"""What the end-to-end numbers mean: written by hand after the recorded run, shown in e2e.md."""

ANALYSIS = """
## What the numbers say

**Neither main aim is met yet; the low-rate latency aim is.** This run is issue 15's
first step (the table "Before and after" above; the changes are listed below). One
gateway moved 0.31x the baseline's signals per second (1,628 against 5,232/s); at 1,000
signals/s offered sigex delivered 990/s with p99 0.9 s; at 250/s sigex's p99 was 236 ms
against the baseline's 222 ms, within the 2x the issue asks. The full run before this one,
on the same code an hour earlier, gave 0.32x (1,086 against 3,395/s), p99 1.9 s at
1,000/s and 245 ms at 250/s.

**CPU per signal is the figure to watch; throughput varies from run to run.** All
processes together spent 1.02 ms per signal with one gateway (1.64 ms in the earlier full
run), against 0.32 ms (0.46) for the baseline. The aim is 0.55 ms. The broker's share is
mostly time, not signals: it spends about 0.4-0.7 of a core whenever the pipeline is busy
(fetches returning at once, produce requests every few milliseconds, transaction markers,
offset commits), whatever the rate, so its CPU per signal falls as throughput rises (0.23
ms at 1,628/s, 0.54 ms at 1,086/s; the baseline's broker 0.19 ms at 5,232/s). What the
Python processes spend per signal moves less: publisher 0.15-0.19 ms, gateway 0.40-0.52
ms, the three subscribers together 0.25-0.38 ms, against 0.03-0.05, 0.06-0.08 and 0.04-0.06
ms for the baseline's. Throughput of the one-gateway scenario over five runs on the code
before this step, this session, was 770-1,090/s (a sixth, 572/s, had a subscriber caught
by the kafka-python group problem below and was discarded); over seven runs during and
after it, 1,090-1,630/s: a single run varies about as much as the gain, so read the
before-and-after table (one run each) as a direction, and the in-process figures below as
the measurement. The baseline measured in the same runs moved too (its Python processes
0.17 -> 0.13 ms per signal), so the fairer before-and-after figure is the ratio to it:
sigex's Python processes spent 8.4x the baseline's CPU per signal before this step and
6.0x after.

**The reference row: librdkafka.** The baseline's pipeline on confluent-kafka spent 0.07
ms of client CPU per signal in its four processes against 0.13 ms for kafka-python's, but
moved 0.84x the signals per second in this run: both baselines are bound by the broker
(0.19-0.22 ms per signal, about 0.95 of a core) and by transaction round trips, not by the
client, and their runs last two seconds. For sigex the client is about a third of each
process's CPU (see the profiles), so librdkafka would save roughly 0.1-0.15 ms per
signal: worth having, not enough alone for the aim. sigex keeps kafka-python.

**Where the saved time came from.** `bench/profile_stages.py` runs the three stages in
one process without Kafka (the Publisher, the gateway's core, the subscribers' checks and
receipts) on 5,000 of the same records and prints CPU per signal for each; it moves by
about 15% between runs here. Before the changes: publisher 135 µs, gateway core 372 µs,
subscriber 319 µs, together 826 µs; after: 107-158, 313-351 and 168-195 µs, together
600-680 µs.

- access records: the canonical JSON fast path now takes `str` subclasses (reason codes
  and roles are `StrEnum`s, which had sent every access record through the slow general
  walk); a record is written from a template (a property test holds it to the canonical
  JSON byte for byte); its few-valued fields are checked once per combination rather than
  by ten regular expressions per record; receipts are no longer built twice
  (`dataclasses.replace` ran every check again). This was most of the subscriber's gain.
- checked once: the Publisher validates and encodes a record in one pass
  (`validated_fields`); the gateway checks decoded fields for what decoding cannot know
  (`validate_decoded`: names, required fields, identifiers), since decoding already gives
  every value its exact type. A property test holds the two validators to the same verdict
  on anything that decodes, and found on its first run a field that decoded to a bare
  `OverflowError` (a timestamp beyond year 9999): now a typed INVALID_RECORD.
- the replay ledger: one Kafka record per batch instead of one per signal (1.00 -> 0.00
  records per signal on the broker, 190 -> 213 bytes), and a gateway no longer reads its
  own entries back.
- producers: the Publisher's and the receipts' producers batch up to 256 and 512 kB (Kafka's
  16 kB default sent a 500-signal publish as dozens of requests per partition).
- the benchmark's broker now runs with the JVM's full compiler (the test broker's
  `-XX:TieredStopAtLevel=1` starts faster but runs slower); both pipelines get the same
  broker.

**What is left is per-record work everywhere, and bytes.** The broker writes 6.4 kB per
signal for sigex against 0.2 kB for the baseline (delivery 2.4 kB, receipts 1.3, ingress
1.3, access log 1.2), and reads most of it back over TLS; the JVM's AES-GCM shows up in
its profile. Records per signal are already about two (ingress and delivery), as for the
baseline. Each Python process still does per-signal work of tens of microseconds: opening
an envelope (AES-GCM, commitments, a Merkle path per proof), decoding fields with one
fastavro call each, deciding, two access records per signal at the gateway and two
receipts at the subscriber, and kafka-python's per-record cost (about a third of each
process, see the profile).

**Two gateways** gave 0.95x one in this run and 1.49x in the earlier full run (0.9-1.5x
before this step). In this run one subscriber of the two-gateway scenario was caught by
the kafka-python group problem below (it spent 0.27 ms per signal on duplicates instead of
0.08). The gateway process uses about 0.6 of a core at full load and waits the rest (on
transaction commits and fetches), so a second process helps when the cores have room,
and one gateway that decides the next batch while the last one commits would help the
same way. Argued from CPU per signal (0.40-0.52 ms in the gateway), one gateway core
carries about 2,000-2,500 signals/s; with the broker and the partners on other machines,
gateways scale out with ingress partitions (six per topic in the stack). No `taskset`
layout was measured: two cores leave no room to give each gateway its own.

**Memory.** Peak RSS: publisher about 74 MiB, gateway 140-170 MiB (batches of up to 2,000
records with their envelopes and access records), each subscriber about 80 MiB; the
baseline's processes 62-70 MiB.

## Problems found on the way (in code this benchmark does not own)

1. **Subscriber: a commit during a rebalance escaped `poll()`** (fixed since: the
   Subscriber now counts the failed commit, logs it without values and lets the
   signals come again after the rejoin, where the message-id check drops them).
2. **kafka-python 3.0.12: a consumer can stay outside its group.** Right after start the
   subscriber's consumer joins (generation 1), gets its partitions, is told to rejoin
   (generation 2, after the first metadata update) and, now and then, never finishes
   that second join: it keeps fetching, but every commit fails with "not part of an
   active group". The next process then receives everything since the last good commit
   again, and the affected subscriber spends its CPU opening and dropping duplicates
   (22-35% of the cores instead of about 5%, visible in the per-process table when it
   happens). Passing the topics to the consumer when it is created (the baseline
   consumers do; the Subscriber subscribes on its first poll after listing every topic)
   may avoid the second join; worth a minimal reproduction and an upstream report. The
   benchmark starts each run's consumer groups at the end of their topics so that one
   run cannot spill into the next, and restarts a subscriber whose commits already fail
   in the warm-up (counted per run above); a failure after the warm-up stays in the
   numbers.
3. **kafka-python 3.0.12: now and then a consumer joins its group but never fetches**
   (seen for baseline consumers). The benchmark restarts such a consumer once its
   warm-up signals are 30 s late and reports how often it did.

## What would help next, by expected gain

1. **Fewer bytes per signal on the broker.** Each delivery carries two Merkle inclusion
   paths (about 300 bytes each for a batch of 500) and two signatures, the decision as
   JSON with the subjects' 64-character pseudonyms, and a wrapped data key; receipts and
   access records are JSON. A batch frame (several sealed envelopes in one Kafka record,
   the envelope format unchanged) would cut the per-record cost in every process and on
   the broker; compressing the access-log and receipt topics (JSON, lz4) would cut a
   third of the bytes.
2. **A librdkafka-based client** (confluent-kafka) for the gateway and the libraries: the
   per-record produce and fetch work leaves Python and the GIL. Not measured yet: the
   reference row the issue asks for is still to be added to this benchmark.
3. **Per-record Python work**: decode the fields of a record with one compiled reader
   instead of one fastavro call per field; reuse a decision for the records of a batch
   with the same (sender, signal, purpose, recipient) where it cannot depend on the
   record; build the two access records of a signal from one template.
4. **Adaptive linger in the gateway**: wait the 50 ms only when the previous poll came
   back full, which takes most of the gateway's share out of the low-rate latency.
"""
