-- +goose Up
-- API channels: the ingress owns these tables. The HMAC secret is needed in clear to verify
-- signatures, so it is stored sealed with AES-256-GCM under PAYSTREAM_MASTER_KEY, with the
-- key id as associated data (a sealed secret cannot be moved to another channel).
CREATE TABLE channels (
    key_id      text PRIMARY KEY,
    name        text NOT NULL,
    secret_seal bytea NOT NULL,
    scopes      text[] NOT NULL,
    rate_limit  integer NOT NULL CHECK (rate_limit > 0), -- requests per second
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- A POST's answer, kept so a retry with the same Idempotency-Key gets the same answer.
-- state 'in_flight' marks a first request still being answered: a concurrent retry waits.
CREATE TABLE idempotency_keys (
    channel_key  text NOT NULL REFERENCES channels (key_id),
    idem_key     text NOT NULL CHECK (length(idem_key) BETWEEN 1 AND 255),
    request_hash bytea NOT NULL, -- sha256 of method, path and body
    state        text NOT NULL CHECK (state IN ('in_flight', 'done')),
    status       integer,
    content_type text,
    body         bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_key, idem_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

CREATE TABLE webhooks (
    id          text PRIMARY KEY,
    channel_key text NOT NULL REFERENCES channels (key_id),
    url         text NOT NULL,
    event_types text[] NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz
);
CREATE INDEX webhooks_channel ON webhooks (channel_key) WHERE deleted_at IS NULL;

-- One event to one webhook: retried with backoff until delivered or given up (after 24 h).
CREATE TABLE webhook_deliveries (
    id              bigserial PRIMARY KEY,
    webhook_id      text NOT NULL REFERENCES webhooks (id),
    event_id        text NOT NULL,
    event_type      text NOT NULL,
    payload         bytea NOT NULL,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_status     integer,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    UNIQUE (webhook_id, event_id) -- a re-read outcome never queues a second delivery
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';

-- Contact data of users, kept by the ingress apart from the ledger: the ledger needs no PII.
CREATE TABLE user_profiles (
    user_id     bigint PRIMARY KEY REFERENCES users (id),
    name        text NOT NULL,
    phone       text,
    email       text,
    country     text,
    channel_key text NOT NULL REFERENCES channels (key_id)
);

-- The status read model: a row at acceptance, completed from payments.outcomes, so status
-- queries and webhooks never touch the pipeline.
CREATE TABLE payment_status (
    payment_id            text PRIMARY KEY,
    channel_key           text NOT NULL REFERENCES channels (key_id),
    type                  text NOT NULL,
    status                text NOT NULL CHECK (status IN ('accepted', 'processing', 'pending_external', 'succeeded', 'rejected', 'failed')),
    reason_code           text,
    amount                numeric NOT NULL,
    currency              text NOT NULL,
    source_wallet_id      text,
    destination_wallet_id text,
    reference             text,
    detail                json NOT NULL DEFAULT '{}', -- fees, rewards, decisions from the outcome (json keeps their key order)
    created_at            timestamptz NOT NULL DEFAULT now(),
    completed_at          timestamptz,
    outcome_event         text -- the outcome applied, so re-reading the topic changes nothing
);

-- +goose Down
DROP TABLE payment_status;
DROP TABLE user_profiles;
DROP TABLE webhook_deliveries;
DROP TABLE webhooks;
DROP TABLE idempotency_keys;
DROP TABLE channels;
