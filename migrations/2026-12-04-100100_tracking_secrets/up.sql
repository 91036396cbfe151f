-- Server-to-server tracking: each organization's HMAC signing secrets (rks_…). The secret is
-- stored as it is, because verifying an HMAC needs its key; the API shows it once. Rotating
-- gives the current secret an expiry 24 hours ahead (it keeps verifying until then) and
-- inserts a new current one; an organization has at most one current secret.
create table tracking_secrets (
    id uuid primary key,
    org_id uuid not null references organizations (id),
    secret text not null check (secret like 'rks\_%'),
    created_at timestamptz not null,
    expires_at timestamptz
);
create unique index tracking_secrets_org_current_key on tracking_secrets (org_id) where expires_at is null;
-- Verification reads an organization's secrets that are still live.
create index tracking_secrets_org_expiry_idx on tracking_secrets (org_id, expires_at);
