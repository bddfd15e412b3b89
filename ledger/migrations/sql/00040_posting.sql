-- +goose Up
-- Payments waiting on a counterparty: what the settlement stage needs to finish them when
-- the connector answers (the result names only the payment).
CREATE TABLE pending_external (
    payment_id text PRIMARY KEY,
    payment    jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    settled_at timestamptz
);

-- Which payment a refund returns money of, so refunds never exceed what was paid. A row
-- counts only once its refund is posted (joined with the ledger's transfers).
CREATE TABLE payment_refunds (
    payment_id text PRIMARY KEY,
    target     text NOT NULL,
    amount     numeric NOT NULL CHECK (amount > 0)
);
CREATE INDEX payment_refunds_target ON payment_refunds (target);

-- +goose Down
DROP TABLE payment_refunds;
DROP TABLE pending_external;
