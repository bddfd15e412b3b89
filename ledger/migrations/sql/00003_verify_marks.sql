-- +goose Up
-- Incremental `paystream verify`: the per-balance-row sums of every transfer created before
-- verify_marks.upto, carried forward, so a run only reads newer transfers (found through
-- a BRIN index on created_at, which costs next to nothing on insert).
CREATE INDEX transfers_created_brin ON transfers USING brin (created_at);

CREATE TABLE verify_marks (
    single boolean PRIMARY KEY DEFAULT true CHECK (single),
    upto   timestamptz NOT NULL
);

CREATE TABLE verify_sums (
    account_id      bigint NOT NULL,
    shard           smallint NOT NULL,
    debits_pending  numeric NOT NULL,
    debits_posted   numeric NOT NULL,
    credits_pending numeric NOT NULL,
    credits_posted  numeric NOT NULL,
    PRIMARY KEY (account_id, shard)
);

-- +goose Down
DROP TABLE verify_sums;
DROP TABLE verify_marks;
DROP INDEX transfers_created_brin;
