-- Added scopes mark one connection's authorizations, not the accounts behind them (issue 13):
-- an account shared with another connection that did not ask for more stays connected there.
-- NULL, or why this link needs consent again ("new permissions requested"); cleared when the
-- connection is authorized again.
ALTER TABLE connection_authorizations ADD COLUMN reconsent_reason TEXT;
