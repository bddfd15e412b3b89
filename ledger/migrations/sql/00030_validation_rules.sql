-- +goose Up
-- Rules of the validation stage. The stage caches them and reloads them every few seconds;
-- operators change them with `paystream rules`.

-- One row of stage-wide settings.
CREATE TABLE validation_settings (
    id                 boolean PRIMARY KEY DEFAULT true CHECK (id),
    -- a frozen wallet cannot pay; this says whether it may still be credited
    frozen_may_receive boolean NOT NULL DEFAULT true,
    -- without a KYC limit row for (level, type, currency) a payment is refused
    -- (type_not_permitted) when true, and has no per-transaction limit when false
    require_kyc_limit  boolean NOT NULL DEFAULT false,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
INSERT INTO validation_settings DEFAULT VALUES;

-- Per-transaction limits by the paying user's KYC level, payment type and currency.
CREATE TABLE validation_kyc_limits (
    kyc_level    smallint NOT NULL CHECK (kyc_level BETWEEN 0 AND 3),
    payment_type text NOT NULL CHECK (payment_type IN ('topup', 'withdrawal', 'transfer',
                     'merchant_payment', 'bill_payment', 'airtime_topup', 'refund', 'hold')),
    currency     text NOT NULL REFERENCES currencies (code),
    -- false refuses the type at this level outright
    allowed      boolean NOT NULL DEFAULT true,
    min_amount   numeric NOT NULL DEFAULT 0 CHECK (min_amount >= 0),
    max_amount   numeric CHECK (max_amount IS NULL OR max_amount >= min_amount), -- NULL: no maximum
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kyc_level, payment_type, currency)
);

-- +goose Down
DROP TABLE validation_kyc_limits;
DROP TABLE validation_settings;
