drop table org_web_tracking_settings;
