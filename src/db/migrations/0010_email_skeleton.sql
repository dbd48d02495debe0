-- The UTS #39 confusable skeleton of each address: registration treats an address
-- that looks like an existing one as taken. Not unique, so a database holding
-- look-alikes from before this rule still opens; filled in at start for old rows.
ALTER TABLE users ADD COLUMN email_skeleton TEXT;
CREATE INDEX users_email_skeleton ON users (email_skeleton);
