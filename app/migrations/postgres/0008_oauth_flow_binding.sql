-- The token endpoint an OAuth2 flow was started for: the callback sends the code nowhere else.
ALTER TABLE oauth_pending ADD COLUMN token_url TEXT;
