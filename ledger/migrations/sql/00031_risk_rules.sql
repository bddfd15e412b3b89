-- +goose Up
-- Rules and the review queue of the risk stage. The stage caches the rules and reloads them
-- every few seconds; operators change them with `paystream rules` and work the queue with
-- `paystream review`.

-- Velocity (count) and turnover (amount) limits per wallet over rolling windows, by the
-- wallet user's KYC level, payment type ('*' sums every type) and currency.
CREATE TABLE risk_limits (
    kyc_level    smallint NOT NULL CHECK (kyc_level BETWEEN 0 AND 3),
    payment_type text NOT NULL CHECK (payment_type IN ('*', 'topup', 'withdrawal', 'transfer',
                     'merchant_payment', 'bill_payment', 'airtime_topup', 'refund', 'hold')),
    time_window  text NOT NULL CHECK (time_window IN ('hour', 'day', 'month')),
    currency     text NOT NULL REFERENCES currencies (code),
    max_count    integer CHECK (max_count IS NULL OR max_count >= 0),  -- NULL: no count limit
    max_amount   numeric CHECK (max_amount IS NULL OR max_amount >= 0), -- NULL: no amount limit
    action       text NOT NULL DEFAULT 'reject' CHECK (action IN ('review', 'reject')),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kyc_level, payment_type, time_window, currency),
    CHECK (max_count IS NOT NULL OR max_amount IS NOT NULL)
);

-- Users whose payments (as payer or payee) go to review or are rejected.
CREATE TABLE risk_watch_list (
    user_id     bigint PRIMARY KEY REFERENCES users (id),
    action      text NOT NULL CHECK (action IN ('review', 'reject')),
    reason_code text NOT NULL DEFAULT 'watch_listed' CHECK (reason_code ~ '^[a-z][a-z0-9_]{0,63}$'),
    added_at    timestamptz NOT NULL DEFAULT now()
);

-- One row of stage-wide settings: the unusual-amount rule flags a payment above
-- anomaly_multiplier times the wallet's running average amount in that currency (over about
-- its last anomaly_last_payments payments), once it has made anomaly_min_payments.
CREATE TABLE risk_settings (
    id                    boolean PRIMARY KEY DEFAULT true CHECK (id),
    anomaly_action        text NOT NULL DEFAULT 'review' CHECK (anomaly_action IN ('off', 'review', 'reject')),
    anomaly_multiplier    numeric NOT NULL DEFAULT 10 CHECK (anomaly_multiplier > 1),
    anomaly_min_payments  integer NOT NULL DEFAULT 5 CHECK (anomaly_min_payments >= 1),
    anomaly_last_payments integer NOT NULL DEFAULT 20 CHECK (anomaly_last_payments >= 1),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
INSERT INTO risk_settings DEFAULT VALUES;

-- Payments held for an operator. record is the payment as the risk stage received it, so an
-- approval re-emits it unchanged but for the decision.
CREATE TABLE risk_reviews (
    payment_id      text PRIMARY KEY,
    wallet          text NOT NULL,
    payment_type    text NOT NULL,
    amount          numeric NOT NULL,
    currency        text NOT NULL,
    score           smallint NOT NULL CHECK (score BETWEEN 0 AND 1000),
    reason_codes    text[] NOT NULL,
    record          jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'approved', 'rejected')),
    resolution_code text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    resolved_at     timestamptz,
    CHECK ((status = 'open') = (resolved_at IS NULL))
);
CREATE INDEX risk_reviews_open ON risk_reviews (created_at) WHERE status = 'open';

-- +goose Down
DROP TABLE risk_reviews;
DROP TABLE risk_settings;
DROP TABLE risk_watch_list;
DROP TABLE risk_limits;
