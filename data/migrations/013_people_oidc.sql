-- A person's OpenID Connect identity (issue 16): the issuer's sub claim of
-- their sign-in, so that a JWT speaks for the person as a person's API
-- token does. NULL: the person signs in with no provider account (or with
-- tokens only). One subject names one person: the server could not tell
-- whom a shared one speaks for.
ALTER TABLE people ADD COLUMN oidc_subject text
    CHECK (oidc_subject IS NULL OR (btrim(oidc_subject) = oidc_subject AND oidc_subject <> '' AND length(oidc_subject) <= 255));
ALTER TABLE people ADD CONSTRAINT people_oidc_subject UNIQUE (oidc_subject);
