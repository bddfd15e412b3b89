-- +goose Up
-- Loyalty campaigns the loyalty stage caches and applies. The money of a cash campaign
-- is in its ledger account (campaign_budget, ref = campaign id); granted is what the
-- stage has promised from it, so a campaign never promises more than was funded.
-- Owned by processors/loyalty.
CREATE TABLE campaigns (
    id              text PRIMARY KEY CHECK (id ~ '^[a-z0-9_-]{1,40}$'),
    subsidiary_id   text NOT NULL REFERENCES subsidiaries (id),
    currency        text NOT NULL REFERENCES currencies (code),
    name            text NOT NULL DEFAULT '',
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'stopped')),
    -- eligibility (an empty list matches any)
    payment_types   text[] NOT NULL DEFAULT '{}',
    merchants       text[] NOT NULL DEFAULT '{}',   -- payee wallet refs
    mccs            text[] NOT NULL DEFAULT '{}',
    starts_at       timestamptz,                    -- inclusive
    ends_at         timestamptz,                    -- exclusive
    min_amount      numeric NOT NULL DEFAULT 0 CHECK (min_amount >= 0),
    -- per payer wallet over the campaign's life: number of rewards, and total reward
    -- (currency units, or points for a points campaign)
    cap_count       integer CHECK (cap_count > 0),
    cap_amount      numeric CHECK (cap_amount > 0),
    -- the reward
    kind            text NOT NULL CHECK (kind IN ('discount', 'random_reduction', 'rebate', 'points', 'points_redemption')),
    rate            numeric NOT NULL DEFAULT 0 CHECK (rate >= 0 AND rate <= 1),
    fixed           numeric NOT NULL DEFAULT 0 CHECK (fixed >= 0),
    max_reward      numeric CHECK (max_reward > 0),
    random_min      numeric CHECK (random_min >= 0),
    random_max      numeric CHECK (random_max >= 0),
    points_per_unit numeric CHECK (points_per_unit > 0),
    -- what one point pays for in a points_redemption campaign, in currency
    point_value     numeric CHECK (point_value > 0),
    granted         numeric NOT NULL DEFAULT 0 CHECK (granted >= 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (starts_at IS NULL OR ends_at IS NULL OR starts_at < ends_at),
    CHECK (random_min IS NULL OR random_max IS NULL OR random_min <= random_max)
);

-- One row per cash reward promised: the audit trail of the budget, and what makes a
-- retried batch get the same grant instead of a second one.
CREATE TABLE campaign_grants (
    campaign_id text NOT NULL REFERENCES campaigns (id),
    payment_id  text NOT NULL,
    payer       text NOT NULL,
    kind        text NOT NULL,
    amount      numeric NOT NULL CHECK (amount > 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, payment_id)
);
CREATE INDEX campaign_grants_payment ON campaign_grants (payment_id);

-- +goose Down
DROP TABLE campaign_grants;
DROP TABLE campaigns;
