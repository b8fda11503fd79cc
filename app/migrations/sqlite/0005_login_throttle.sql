-- Sign-in throttling (issue 10), shared by every replica.
--
-- One row per throttled subject: scope 'account' (the normalised email, known or not, so the
-- answer does not tell which accounts exist) or 'address' (the client address). `failures`
-- counts wrong passwords in a row (a success clears the account's row; a row idle for a day
-- starts again from one); `locked_until` is when the next attempt may be checked at all.
-- Rows are written with one INSERT ... ON CONFLICT DO UPDATE, atomic on both backends, and a
-- lock only ever moves later.
CREATE TABLE login_throttle (
    scope        TEXT NOT NULL CHECK (scope IN ('account', 'address')),
    subject      TEXT NOT NULL,
    failures     BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT NOT NULL DEFAULT 0,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (scope, subject)
);
CREATE INDEX login_throttle_updated ON login_throttle (updated_at);
