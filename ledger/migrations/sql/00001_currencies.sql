-- +goose Up
-- Currency rules: an amount with more fraction digits than exponent is refused, never rounded.
CREATE TABLE currencies (
    code     text PRIMARY KEY CHECK (code ~ '^[A-Z]{3,4}$'),
    exponent smallint NOT NULL CHECK (exponent BETWEEN 0 AND 8),
    name     text NOT NULL,
    -- points are the loyalty "currency": never convertible, never part of e-money totals
    is_points boolean NOT NULL DEFAULT false,
    -- the ledger computes in integer minor units: amount = units * unit, units = amount * factor
    unit   numeric GENERATED ALWAYS AS (round(1::numeric / (10::numeric ^ exponent), exponent)) STORED,
    factor numeric GENERATED ALWAYS AS (round(10::numeric ^ exponent)) STORED
);

INSERT INTO currencies (code, exponent, name, is_points) VALUES
    ('USD', 2, 'US Dollar', false),
    ('EUR', 2, 'Euro', false),
    ('GBP', 2, 'Pound Sterling', false),
    ('JPY', 0, 'Yen', false),
    ('KRW', 0, 'Won', false),
    ('VND', 0, 'Dong', false),
    ('IDR', 2, 'Rupiah', false),
    ('PHP', 2, 'Philippine Peso', false),
    ('THB', 2, 'Baht', false),
    ('SGD', 2, 'Singapore Dollar', false),
    ('INR', 2, 'Indian Rupee', false),
    ('KES', 2, 'Kenyan Shilling', false),
    ('NGN', 2, 'Naira', false),
    ('BHD', 3, 'Bahraini Dinar', false),
    ('KWD', 3, 'Kuwaiti Dinar', false),
    ('PTS', 0, 'Loyalty points', true);

-- +goose Down
DROP TABLE currencies;
