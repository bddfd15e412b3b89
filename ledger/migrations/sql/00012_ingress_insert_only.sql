-- +goose Up
-- Every accepted payment used to update two rows once each: its idempotency key with the
-- answer and its status row with the outcome. At 2,500 payments/s that left 5,000 dead row
-- versions a second, and autovacuum came back every minute to scan both tables and their
-- indexes, 15 s of every minute by the fourth; the stream's latency rose tenfold while it
-- ran. Answers and outcomes now go to tables of their own, and both hot tables take only
-- inserts. An outcome row is updated only when a payment waiting on a counterparty
-- (pending_external, processing) later ends.
CREATE TABLE idempotency_answers (
    channel_key  text NOT NULL,
    idem_key     text NOT NULL,
    status       integer NOT NULL,
    content_type text NOT NULL,
    body         bytea NOT NULL,
    PRIMARY KEY (channel_key, idem_key)
);
INSERT INTO idempotency_answers (channel_key, idem_key, status, content_type, body)
SELECT channel_key, idem_key, status, coalesce(content_type, ''), coalesce(body, ''::bytea)
  FROM idempotency_keys WHERE state = 'done';
ALTER TABLE idempotency_keys DROP COLUMN state, DROP COLUMN status, DROP COLUMN content_type, DROP COLUMN body;
ALTER TABLE idempotency_keys RESET (fillfactor);

CREATE TABLE payment_outcomes (
    payment_id    text PRIMARY KEY,
    status        text NOT NULL CHECK (status IN ('accepted', 'processing', 'pending_external', 'succeeded', 'rejected', 'failed')),
    reason_code   text,
    detail        json NOT NULL, -- fees, rewards, decisions (json keeps their key order)
    completed_at  timestamptz,
    outcome_event text NOT NULL  -- the outcome applied, so re-reading the topic changes nothing
);
INSERT INTO payment_outcomes (payment_id, status, reason_code, detail, completed_at, outcome_event)
SELECT payment_id, status, reason_code, detail, completed_at, coalesce(outcome_event, '')
  FROM payment_status WHERE status <> 'accepted';
ALTER TABLE payment_status DROP COLUMN status, DROP COLUMN reason_code, DROP COLUMN detail,
    DROP COLUMN completed_at, DROP COLUMN outcome_event;
ALTER TABLE payment_status RESET (fillfactor);

-- +goose Down
ALTER TABLE payment_status SET (fillfactor = 60);
ALTER TABLE payment_status
    ADD COLUMN status text NOT NULL DEFAULT 'accepted'
        CHECK (status IN ('accepted', 'processing', 'pending_external', 'succeeded', 'rejected', 'failed')),
    ADD COLUMN reason_code text,
    ADD COLUMN detail json NOT NULL DEFAULT '{}',
    ADD COLUMN completed_at timestamptz,
    ADD COLUMN outcome_event text;
UPDATE payment_status s SET status = o.status, reason_code = o.reason_code, detail = o.detail,
       completed_at = o.completed_at, outcome_event = o.outcome_event
  FROM payment_outcomes o WHERE o.payment_id = s.payment_id;
ALTER TABLE payment_status ALTER COLUMN status DROP DEFAULT;
DROP TABLE payment_outcomes;

ALTER TABLE idempotency_keys SET (fillfactor = 60);
ALTER TABLE idempotency_keys
    ADD COLUMN state text NOT NULL DEFAULT 'in_flight' CHECK (state IN ('in_flight', 'done')),
    ADD COLUMN status integer,
    ADD COLUMN content_type text,
    ADD COLUMN body bytea;
UPDATE idempotency_keys k SET state = 'done', status = a.status, content_type = a.content_type, body = a.body
  FROM idempotency_answers a WHERE a.channel_key = k.channel_key AND a.idem_key = k.idem_key;
ALTER TABLE idempotency_keys ALTER COLUMN state DROP DEFAULT;
DROP TABLE idempotency_answers;
