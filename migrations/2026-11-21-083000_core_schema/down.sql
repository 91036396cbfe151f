-- Drops the core schema, dependents first.
drop table audit_log;
drop function audit_log_refuse_change();
drop table affiliate_coupons;
drop table campaign_coupons;
drop table affiliate_links;
drop table affiliates;
drop table programs;
drop table api_keys;
drop table organizations;
