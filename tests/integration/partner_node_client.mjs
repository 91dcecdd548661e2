// A partner system that is not Python: Node.js's built-in fetch, no packages.
//
// RVIG's case system publishes a frequent-mover signal through RVIG's node;
// the municipality's case system takes it from GM0363's node, acknowledges it,
// and answers with an investigation outcome through its own node; RVIG takes
// and acknowledges that answer. Prints one JSON line with what it saw.
//
// usage: node partner_node_client.mjs RVIG_URL GM0363_URL RECORD_JSON

import { randomUUID } from "node:crypto";

const [rvig, municipality, recordJson] = process.argv.slice(2);
const record = JSON.parse(recordJson);

async function call(method, url, body, headers = {}) {
  const response = await fetch(url, {
    method,
    headers: { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) {
    throw new Error(`${method} ${url}: ${response.status} ${text}`);
  }
  return JSON.parse(text);
}

async function takeUntil(node, wanted, seconds) {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    const { deliveries } = await call("GET", `${node}/v1/deliveries?wait=5`);
    for (const delivery of deliveries) {
      if (wanted(delivery)) return delivery;
      // someone else's signal: acknowledge it so that it does not come back
      await call("POST", `${node}/v1/deliveries/ack`, { message_ids: [delivery.message_id] });
    }
  }
  throw new Error("nothing arrived in time");
}

const traceId = randomUUID().replaceAll("-", "");
const published = await call(
  "POST",
  `${rvig}/v1/signals/laa.frequent-mover`,
  { purpose: "LAA_SIGNAAL", records: [record] },
  { "Idempotency-Key": randomUUID(), traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
);

const signal = await takeUntil(
  municipality,
  (d) => d.fields.signal_id === record.signal_id,
  90,
);
const acked = await call("POST", `${municipality}/v1/deliveries/ack`, {
  message_ids: [signal.message_id],
});

const outcome = {
  signal_id: randomUUID(),
  detected_at: new Date("2027-02-01T10:00:00Z").toISOString(),
  in_reply_to: signal.fields.signal_id,
  municipality: "GM0363",
  outcome: "ADDRESS_CORRECTED",
  concluded_on: "2027-02-01",
};
const answered = await call("POST", `${municipality}/v1/signals/laa.investigation-outcome`, {
  purpose: "LAA_TERUGKOPPELING",
  record: outcome,
});
const reply = await takeUntil(
  rvig,
  (d) => d.signal === "laa.investigation-outcome" && d.fields.signal_id === outcome.signal_id,
  90,
);
const replyAcked = await call("POST", `${rvig}/v1/deliveries/ack`, {
  message_ids: [reply.message_id],
});

console.log(
  JSON.stringify({
    trace_id: traceId,
    published_message_id: published.results[0].message_id,
    received_message_id: signal.message_id,
    received_trace_id: signal.trace_id,
    received_bsn_matches: signal.fields.bsn === record.bsn,
    received_legal_basis: signal.legal_basis,
    acknowledged: acked.acknowledged,
    answer_message_id: answered.results[0].message_id,
    answer_status: answered.results[0].status,
    reply_message_id: reply.message_id,
    reply_outcome: reply.fields.outcome,
    reply_acknowledged: replyAcked.acknowledged,
  }),
);
