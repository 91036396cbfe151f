drop table org_tracking_settings;
