"""What the end-to-end numbers mean: written by hand after the recorded run, shown in e2e.md."""

ANALYSIS = """
## What the numbers say

**Neither aim is met on this machine.** sigex moves about a fifth of what the plain
kafka-python pipeline moves, and at 1,000 signals/s offered it falls behind, so its
latency is queueing that grows with the length of the run.

**Throughput is bound by CPU, and sigex needs about five times more of it per signal.**
Every process of both pipelines, and the broker, share two cores. Adding up the CPU time
of all processes (the "CPU ms per signal" column of the maximum-throughput runs), sigex
spends 1.5-1.6 ms per signal end to end and the baseline 0.26-0.3 ms; in the sigex runs
its processes kept both cores 75-95% busy, so about 1,300 signals/s is the ceiling on
two cores whatever the pipeline's shape (four full runs on the current gateway: sigex
890-1,140 signals/s, baseline 4,960-6,500, a ratio of 0.17-0.20 every time). The extra
cost sits in four places, largest first:

1. the **broker** (about 0.6 ms against 0.12 ms): per signal sigex writes a sealed
   ingress envelope (several times the size of the baseline's ~90-byte Avro record), a
   sealed delivery, its share of the packed access records, and two receipts from the
   subscriber, and every gateway transaction spans the delivery and audit partitions;
2. the **gateway** (about 0.45 ms against 0.07 ms for the relay): open and verify the
   submission, decode and validate, decide, build the access records, project and
   re-seal, and the Kafka client's per-record cost;
3. the **subscribers** (about 0.35 ms for the three together, against 0.05 ms): open and
   verify both proofs, decide again, and write two receipts per signal;
4. the **publisher** (about 0.2 ms against 0.05 ms): validate, pre-check the policy,
   commit to the fields, seal.

To reach half the baseline sigex would have to come down to about 0.55 ms of CPU per
signal, i.e. lose about two thirds of its cost; the suggestions at the end are where
that could come from. The baseline is a deliberately thin pipeline (no policy, no
cryptography, no audit, no receipts), so the ratio mostly measures the price of those.

**Latency.** At 1,000 signals/s offered the publisher kept the pace, but the pipeline
delivered only 880-965/s, so a backlog built up in front of the gateway (the stage
"sealed -> decided" holds most of it) and p99 grows with the length of the run (1.2-3.8
s over 15 s in four runs). Below saturation, at 250/s, sigex's median is 120-155 ms and
its p99 650-800 ms, against 30-40 ms and 60-250 ms for the baseline. The stage split at
250/s shows where a quiet signal waits: 80-100 ms (median) from sealing to the gateway's
decision, which includes the gateway's new 50 ms linger (it gathers up to 2,000 records
or 50 ms per transaction), and about 50 ms from the decision to the handler (the
gateway's transaction commit, the read_committed fetch and the subscriber's checks). In
earlier runs a subscriber caught by the commit problem described below burnt CPU on
duplicates and lengthened the tail. The baseline's own p99 at 1,000/s is already 160-245
ms on this shared machine: two transactional hops with read_committed consumers leave
little room under 250 ms here, and the long tails of both sides follow the machine's
load.

**Two gateways instead of one** gave little or no gain: 0.9x to 1.15x of one gateway in
four full runs (1.5x once, when the one-gateway run had a subscriber caught by the
commit problem below). With two cores already full, a second gateway process cannot
bring CPU of its own; it adds a rebalance, another set of Kafka clients and smaller
transactions. The gateway is only about a quarter of the CPU per signal, so even a
perfect split of its work would not change much here: scaling out pays off when gateway
instances get cores of their own (the broker and the partners' processes run elsewhere
in any real deployment). Two baseline relays gave 1.0x to 1.2x of one; the relay is
bound by transaction round trips rather than CPU, so two can overlap their commits, but
its runs last only 1.5-2 s, so that number is noisy.

**Memory.** Peak RSS per process: publisher about 70 MiB (baseline 66), gateway 95-125
MiB in the maximum-throughput runs (relay about 60; the gateway's batches of up to 2,000
records with their envelopes and access records are what grows), each subscriber about
72 MiB (baseline consumer about 60); a subscriber caught by the commit problem below
grows to 80-90 MiB.

**Run-to-run variation.** The machine is shared: the load average at the start of the
recorded run is in the notes below (another engineer's job had it at 20-48 a quarter of
an hour earlier), and earlier runs today, against the gateway before its access-record
packing (commit ff6ed9d), gave sigex 420-770 signals/s and a ratio of 0.10-0.25.
Absolute numbers move with other people's work; the CPU per signal moves much less.

## Problems found on the way (in code this benchmark does not own)

1. **Subscriber: a commit during a rebalance escapes `poll()`.**
   `Subscriber._acknowledge` calls `self._consumer.commit(offsets)`; when the group is
   rebalancing kafka-python raises `RebalanceInProgressError` (or `CommitFailedError`),
   which leaves `poll()` and ends `run()`. It happened in several runs today (a run's
   failed commits are listed under the table when there are any). Proposed fix: catch
   those two in `_acknowledge`, log a warning without values, and return; the next poll
   rejoins the group, the uncommitted deliveries come again, and the message-id check
   drops them (their receipts have the same operation ids, so the audit indexer ingests
   them once).
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

## Where the time goes, and what would help

The profiled run (last section) shows, for the gateway's main thread while it is busy
(`_transact`): about 70% in per-record Python work (reading the submission, i.e.
opening, decoding and validating it, about as much as deciding and building the access
records; re-sealing is small), about a sixth inside kafka-python's `send` (a partitioner
in Python, the record accumulator, and a wake-up write to a socket for every record),
and about a tenth waiting for the transaction calls. cProfile sees only the main thread;
the clients' I/O threads are in the per-process CPU columns. Suggestions, roughly by
expected gain:

1. **Write fewer, larger records to the broker.** The subscriber writes two receipts
   (RECEIVED and ACKNOWLEDGED) as two Kafka records per signal: pack a poll's receipts
   into one record, as the gateway now does for access records, or record only the
   acknowledgement (a refusal is its own receipt). This attacks the largest item, the
   broker's CPU, and the subscribers' send cost at once.
2. **Check things once.** The publisher runs the identifier checks twice per record
   (`validate_record` and again on encoding); the gateway validates after decoding (let
   one strict decode do both); access records re-check identifiers the gateway has just
   produced itself (a trusted internal constructor could skip that).
3. **A librdkafka-based client** (confluent-kafka) for the gateway and the libraries
   would move the per-record produce and fetch work out of Python and out of the GIL; it
   is the biggest single lever for both pipelines, but it changes a pinned dependency
   and the transaction code.
4. **Adaptive linger in the gateway**: wait the 50 ms only when the previous poll came
   back full, so that a quiet gateway forwards at once; that takes most of the gateway's
   share out of the low-load latency.
5. **Give the gateway its own cores.** On two shared cores the broker and the partners'
   processes take three quarters of the CPU; the gateway scales out with instances only
   where they do not compete for the same cores.
"""
