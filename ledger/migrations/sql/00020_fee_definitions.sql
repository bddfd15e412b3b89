-- +goose Up
-- Fee definitions: rules the fee stage caches and applies. A NULL selector matches any
-- value; every definition that matches a payment adds a fee line. Amounts are in the
-- definition's currency; rate is a fraction (0.005 is 0.5 %). Owned by processors/fee.
CREATE TABLE fee_definitions (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code          text NOT NULL CHECK (code ~ '^[a-z0-9_]{1,40}$'),
    subsidiary_id text NOT NULL REFERENCES subsidiaries (id),
    currency      text NOT NULL REFERENCES currencies (code),
    -- selectors (NULL = any)
    payment_type  text,
    -- '' prices new payments only; capture, void, adjust or refund price that operation
    operation     text NOT NULL DEFAULT '' CHECK (operation IN ('', 'capture', 'void', 'adjust', 'refund')),
    fee_group     text,
    wallet_type   text,
    kyc_level     smallint,
    method        text,
    amount_from   numeric CHECK (amount_from >= 0),          -- inclusive
    amount_to     numeric CHECK (amount_to > 0),             -- exclusive
    valid_from    timestamptz,                               -- inclusive
    valid_to      timestamptz,                               -- exclusive
    -- the fee: fixed + rate * amount, clamped to [fee_min, fee_max], then rounded
    fixed         numeric NOT NULL DEFAULT 0 CHECK (fixed >= 0),
    rate          numeric NOT NULL DEFAULT 0 CHECK (rate >= 0 AND rate < 1),
    fee_min       numeric CHECK (fee_min >= 0),
    fee_max       numeric CHECK (fee_max >= 0),
    -- payer: the paying customer (the credited wallet of a top-up); merchant: the payee
    paid_by       text NOT NULL DEFAULT 'payer' CHECK (paid_by IN ('payer', 'merchant')),
    vat_exempt    boolean NOT NULL DEFAULT false,
    rounding      text NOT NULL DEFAULT 'half_up' CHECK (rounding IN ('half_up', 'down', 'up')),
    status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (amount_from IS NULL OR amount_to IS NULL OR amount_from < amount_to),
    CHECK (valid_from IS NULL OR valid_to IS NULL OR valid_from < valid_to),
    CHECK (fee_min IS NULL OR fee_max IS NULL OR fee_min <= fee_max)
);
CREATE INDEX fee_definitions_active ON fee_definitions (subsidiary_id) WHERE status = 'active';

-- +goose Down
DROP TABLE fee_definitions;
