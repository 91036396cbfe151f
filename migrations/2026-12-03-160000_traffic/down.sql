drop index affiliate_links_slug_idx;
drop table visitor_salts;
drop table clicks;
alter table conversions drop column click_id;
alter table programs drop column landing_url;
