-- Conversions and their commission ledger, processed sources, sub-affiliate settings and
-- recruitment, the inbound event inbox, and outbound webhooks (endpoints, outbox, deliveries).
--
-- Same conventions as the core schema: every constraint and index is named, ids are UUID v7,
-- enums are text holding the domain's `as_str()` names behind CHECK constraints, numeric
-- CHECKs guard what the domain types can represent, and tenant tables carry `org_id` with
-- composite `(org_id, x_id)` foreign keys so no row can point into another organization.

-- Conversions may name the affiliate coupon that decided them: the composite foreign key
-- needs a unique target on (org_id, id), as programs, affiliates and campaign coupons have.
alter table affiliate_coupons
    add constraint affiliate_coupons_org_id_id_key unique (org_id, id);

-- Resolving the organization of platform events by Stripe id, in whichever organization.
create index affiliate_coupons_stripe_id_any_org_idx
    on affiliate_coupons (stripe_promotion_code_id) where stripe_promotion_code_id is not null;
create index campaign_coupons_stripe_id_any_org_idx
    on campaign_coupons (stripe_coupon_id) where stripe_coupon_id is not null;
-- org_by_stripe_account.
create index organizations_stripe_account_idx
    on organizations (stripe_account_id) where stripe_account_id is not null;
-- some_orgs: oldest first.
create index organizations_created_at_idx on organizations (created_at, id);

-- A sale, checkout or lead source (`invoice:in_…`, `checkout:cs_…`, `lead:sub_…`) is
-- processed once per organization: claiming it is an insert that does nothing on conflict.
create table processed_sources (
    org_id     uuid        not null,
    source     text        not null,
    claimed_at timestamptz not null,
    constraint processed_sources_pkey primary key (org_id, source),
    constraint processed_sources_org_id_fkey foreign key (org_id) references organizations (id)
);

-- A program's sub-affiliate (one-tier override) setting; no row means the default (disabled).
create table program_sub_affiliate_configs (
    org_id             uuid    not null,
    program_id         uuid    not null,
    enabled            boolean not null,
    -- The override as a percentage of the recruit's commission, in hundredths.
    percent_hundredths bigint  not null,
    constraint program_sub_affiliate_configs_pkey primary key (program_id),
    constraint program_sub_affiliate_configs_org_id_fkey foreign key (org_id) references organizations (id),
    constraint program_sub_affiliate_configs_program_fkey
        foreign key (org_id, program_id) references programs (org_id, id),
    constraint program_sub_affiliate_configs_percent_hundredths_check check (percent_hundredths >= 0)
);

-- Who recruited whom: one recruiter per affiliate, in the same organization.
create table affiliate_recruitments (
    org_id       uuid not null,
    affiliate_id uuid not null,
    recruiter_id uuid not null,
    constraint affiliate_recruitments_pkey primary key (affiliate_id),
    constraint affiliate_recruitments_org_id_fkey foreign key (org_id) references organizations (id),
    constraint affiliate_recruitments_affiliate_fkey
        foreign key (org_id, affiliate_id) references affiliates (org_id, id),
    constraint affiliate_recruitments_recruiter_fkey
        foreign key (org_id, recruiter_id) references affiliates (org_id, id),
    -- An affiliate recruiting itself would earn overrides on its own sales.
    constraint affiliate_recruitments_not_self_check check (affiliate_id <> recruiter_id)
);

-- recruits_of.
create index affiliate_recruitments_recruiter_idx
    on affiliate_recruitments (org_id, recruiter_id, affiliate_id);

create table conversions (
    id                   uuid        not null,
    org_id               uuid        not null,
    program_id           uuid        not null,
    affiliate_id         uuid        not null,
    kind                 text        not null,
    status               text        not null,
    amount_minor         bigint      not null,
    currency             text        not null,
    -- The sum of the ledger.
    commission_minor     bigint      not null,
    attribution_method   text,
    coupon_code          text,
    affiliate_coupon_id  uuid,
    stripe_customer_id   text,
    stripe_subscription_id text,
    -- The first invoice or checkout session.
    external_event_id    text,
    customer_email       text,
    denial_reason        text,
    -- Set on overrides: the recruit's conversion the override was earned on.
    parent_conversion_id uuid,
    attribution_trace    jsonb       not null,
    paid_invoices        bigint      not null,
    approve_after        timestamptz not null,
    approved_at          timestamptz,
    refunded_at          timestamptz,
    created_at           timestamptz not null,
    updated_at           timestamptz not null,
    constraint conversions_pkey primary key (id),
    constraint conversions_org_id_fkey foreign key (org_id) references organizations (id),
    constraint conversions_program_fkey
        foreign key (org_id, program_id) references programs (org_id, id),
    constraint conversions_affiliate_fkey
        foreign key (org_id, affiliate_id) references affiliates (org_id, id),
    constraint conversions_affiliate_coupon_fkey
        foreign key (org_id, affiliate_coupon_id) references affiliate_coupons (org_id, id),
    constraint conversions_parent_fkey
        foreign key (org_id, parent_conversion_id) references conversions (org_id, id),
    -- Target of the composite tenant foreign keys; also serves the keyset list.
    constraint conversions_org_id_id_key unique (org_id, id),
    constraint conversions_kind_check
        check (kind in ('OneTime', 'Recurring', 'Bonus', 'ClickReward', 'LeadReward')),
    constraint conversions_status_check
        check (status in ('Pending', 'Approved', 'Paid', 'Denied', 'Refunded')),
    constraint conversions_currency_check check (currency ~ '^[A-Z]{3}$'),
    constraint conversions_paid_invoices_check check (paid_invoices between 0 and 4294967295),
    constraint conversions_not_own_parent_check check (parent_conversion_id is distinct from id)
);

-- The list filtered by affiliate or by program.
create index conversions_affiliate_idx on conversions (org_id, affiliate_id, id desc);
-- One sale conversion per subscription: two first invoices processed at once cannot both
-- start one (the loser conflicts, is retried, and records a renewal).
create unique index conversions_subscription_sale_key
    on conversions (org_id, stripe_subscription_id)
    where stripe_subscription_id is not null and kind in ('OneTime', 'Recurring') and parent_conversion_id is null;
-- One organization per connected Stripe account.
create unique index organizations_stripe_account_key on organizations (stripe_account_id) where stripe_account_id is not null;
create index conversions_program_idx on conversions (org_id, program_id, id desc);
-- sale_conversion_of_subscription.
create index conversions_subscription_idx
    on conversions (org_id, stripe_subscription_id, created_at desc)
    where stripe_subscription_id is not null and parent_conversion_id is null;
-- conversion_of_invoice, by the first invoice or checkout session.
create index conversions_external_event_idx
    on conversions (org_id, external_event_id)
    where external_event_id is not null and parent_conversion_id is null;
-- overrides_of.
create index conversions_parent_idx
    on conversions (org_id, parent_conversion_id, id) where parent_conversion_id is not null;
-- affiliate_of_customer, by Stripe customer or by email regardless of case.
create index conversions_customer_idx
    on conversions (org_id, stripe_customer_id, created_at desc)
    where stripe_customer_id is not null and parent_conversion_id is null;
create index conversions_customer_email_idx
    on conversions (org_id, lower(customer_email), created_at desc)
    where customer_email is not null and parent_conversion_id is null;
-- conversions_due_for_approval, across organizations.
create index conversions_due_idx on conversions (approve_after, id) where status = 'Pending';

create table ledger_events (
    id                uuid        not null,
    org_id            uuid        not null,
    conversion_id     uuid        not null,
    kind              text        not null,
    amount_minor      bigint      not null,
    commission_minor  bigint      not null,
    stripe_invoice_id text,
    refunded_total    bigint,
    occurred_at       timestamptz not null,
    created_at        timestamptz not null,
    constraint ledger_events_pkey primary key (id),
    constraint ledger_events_org_id_fkey foreign key (org_id) references organizations (id),
    constraint ledger_events_conversion_fkey
        foreign key (org_id, conversion_id) references conversions (org_id, id),
    constraint ledger_events_kind_check check (kind in ('initial', 'renewal', 'refund', 'adjustment'))
);

-- ledger_of, oldest first.
create index ledger_events_conversion_idx on ledger_events (org_id, conversion_id, occurred_at, id);
-- conversion_of_invoice, by a sale entry.
create index ledger_events_invoice_idx
    on ledger_events (org_id, stripe_invoice_id) where stripe_invoice_id is not null;

-- The ledger is append-only, like the audit log: a correction is a new entry.
create function ledger_events_refuse_change() returns trigger
    language plpgsql as $$
begin
    raise exception 'ledger_events is append-only: % refused', tg_op
        using errcode = 'restrict_violation';
end;
$$;

create trigger ledger_events_append_only
    before update or delete on ledger_events
    for each row execute function ledger_events_refuse_change();

create trigger ledger_events_no_truncate
    before truncate on ledger_events
    for each statement execute function ledger_events_refuse_change();

-- Inbound Stripe events, stored when verified and processed by workers.
create table inbox_events (
    -- Stripe's event id (`evt_…`): the idempotency key. Byte order ("C"), so lists break
    -- ties on it the same way whatever the database's default collation.
    id              text        collate "C" not null,
    -- NULL until the organization is known (resolved while processing).
    org_id          uuid,
    account         text,
    event_type      text        not null,
    -- The raw body as received.
    payload         text        not null,
    status          text        not null,
    attempts        bigint      not null,
    next_attempt_at timestamptz not null,
    locked_until    timestamptz,
    last_error      text,
    received_at     timestamptz not null,
    processed_at    timestamptz,
    constraint inbox_events_pkey primary key (id),
    constraint inbox_events_org_id_fkey foreign key (org_id) references organizations (id),
    constraint inbox_events_status_check check (status in ('Pending', 'Done', 'Failed', 'Skipped')),
    constraint inbox_events_attempts_check check (attempts between 0 and 4294967295)
);

-- claim_inbox_events: pending events in arrival order.
create index inbox_events_pending_idx on inbox_events (received_at, id) where status = 'Pending';
-- list_inbox_events of one organization, and of every organization.
create index inbox_events_org_idx on inbox_events (org_id, received_at desc, id desc);
create index inbox_events_received_idx on inbox_events (received_at desc, id desc);

create table webhook_endpoints (
    id                   uuid        not null,
    org_id               uuid        not null,
    url                  text        not null,
    description          text,
    -- Event types or `family.*` wildcards; empty means every event.
    events               text[]      not null default '{}',
    secret               text        not null,
    status               text        not null,
    disabled_reason      text,
    consecutive_failures bigint      not null,
    created_at           timestamptz not null,
    updated_at           timestamptz not null,
    constraint webhook_endpoints_pkey primary key (id),
    constraint webhook_endpoints_org_id_fkey foreign key (org_id) references organizations (id),
    -- Target of the deliveries' foreign key; also serves "org_id = $1 order by id desc".
    constraint webhook_endpoints_org_id_id_key unique (org_id, id),
    constraint webhook_endpoints_status_check check (status in ('Enabled', 'Disabled')),
    constraint webhook_endpoints_consecutive_failures_check
        check (consecutive_failures between 0 and 4294967295)
);

-- The transactional outbox: written in the same transaction as the change it reports.
create table outbox_events (
    id         uuid        not null,
    org_id     uuid        not null,
    event_type text        not null,
    data       jsonb       not null,
    created_at timestamptz not null,
    constraint outbox_events_pkey primary key (id),
    constraint outbox_events_org_id_fkey foreign key (org_id) references organizations (id),
    constraint outbox_events_org_id_id_key unique (org_id, id)
);

create table webhook_deliveries (
    id              uuid        not null,
    org_id          uuid        not null,
    endpoint_id     uuid        not null,
    event_id        uuid        not null,
    event_type      text        not null,
    -- The exact body sent, the same bytes on every attempt.
    body            text        not null,
    status          text        not null,
    attempts        bigint      not null,
    next_attempt_at timestamptz not null,
    locked_until    timestamptz,
    last_status     integer,
    last_error      text,
    created_at      timestamptz not null,
    delivered_at    timestamptz,
    constraint webhook_deliveries_pkey primary key (id),
    constraint webhook_deliveries_org_id_fkey foreign key (org_id) references organizations (id),
    -- Deleting an endpoint deletes its deliveries.
    constraint webhook_deliveries_endpoint_fkey
        foreign key (org_id, endpoint_id) references webhook_endpoints (org_id, id) on delete cascade,
    constraint webhook_deliveries_event_fkey
        foreign key (org_id, event_id) references outbox_events (org_id, id),
    constraint webhook_deliveries_status_check check (status in ('Pending', 'Succeeded', 'Failed')),
    constraint webhook_deliveries_attempts_check check (attempts between 0 and 4294967295),
    constraint webhook_deliveries_last_status_check check (last_status between 0 and 65535)
);

-- deliveries_of (and the cascade from webhook_endpoints).
create index webhook_deliveries_endpoint_idx on webhook_deliveries (org_id, endpoint_id, id desc);
-- Serves the foreign key to outbox_events.
create index webhook_deliveries_event_idx on webhook_deliveries (org_id, event_id);
-- claim_deliveries: pending deliveries, oldest first.
create index webhook_deliveries_pending_idx
    on webhook_deliveries (created_at, id) where status = 'Pending';
