drop index if exists organizations_stripe_account_key;
-- Drops what up.sql created, dependents first.
drop table webhook_deliveries;
drop table outbox_events;
drop table webhook_endpoints;
drop table inbox_events;
drop table ledger_events;
drop function ledger_events_refuse_change();
drop table conversions;
drop table affiliate_recruitments;
drop table program_sub_affiliate_configs;
drop table processed_sources;
drop index organizations_created_at_idx;
drop index organizations_stripe_account_idx;
drop index campaign_coupons_stripe_id_any_org_idx;
drop index affiliate_coupons_stripe_id_any_org_idx;
alter table affiliate_coupons drop constraint affiliate_coupons_org_id_id_key;
