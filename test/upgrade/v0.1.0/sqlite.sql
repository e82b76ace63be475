-- The SQLite database nexus v0.1.0 created and used: written by test/upgrade/make-fixtures.sh; do not edit.
CREATE TABLE schema_migrations (
	version INTEGER PRIMARY KEY,
	name TEXT NOT NULL,
	applied_at DATETIME NOT NULL);
CREATE TABLE organizations (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	created_at DATETIME NOT NULL,
	updated_at DATETIME NOT NULL
);
CREATE TABLE users (
	id TEXT PRIMARY KEY,
	organization_id TEXT NOT NULL REFERENCES organizations (id),
	email TEXT NOT NULL,
	email_key TEXT NOT NULL,
	name TEXT NOT NULL,
	role TEXT NOT NULL CHECK (role IN ('admin', 'manager', 'analyst', 'member')),
	status TEXT NOT NULL CHECK (status IN ('active', 'inactive')),
	password_hash TEXT NOT NULL,
	created_at DATETIME NOT NULL,
	updated_at DATETIME NOT NULL
);
CREATE TABLE clients (
	id TEXT PRIMARY KEY,
	client_id TEXT NOT NULL,
	name TEXT NOT NULL,
	organization_id TEXT REFERENCES organizations (id),
	disabled_at DATETIME,
	created_at DATETIME NOT NULL,
	updated_at DATETIME NOT NULL
, scopes TEXT);
CREATE TABLE refresh_sessions (
	id TEXT PRIMARY KEY,
	user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	organization_id TEXT NOT NULL REFERENCES organizations (id),
	client_id TEXT NOT NULL,
	device_id TEXT,
	salt BLOB NOT NULL,
	generation BIGINT NOT NULL,
	rotated_at DATETIME,
	created_at DATETIME NOT NULL,
	last_used_at DATETIME NOT NULL,
	expires_at DATETIME NOT NULL,
	revoked_at DATETIME,
	revoked_reason TEXT
, role TEXT);
CREATE TABLE signing_keys (
	id TEXT PRIMARY KEY,
	algorithm TEXT NOT NULL,
	public_jwk TEXT NOT NULL,
	sealed_private_key BLOB NOT NULL,
	created_at DATETIME NOT NULL,
	active_from DATETIME NOT NULL
);
CREATE TABLE auth_events (
	id TEXT PRIMARY KEY,
	occurred_at DATETIME NOT NULL,
	action TEXT NOT NULL,
	result TEXT NOT NULL,
	user_id TEXT,
	organization_id TEXT,
	client_id TEXT,
	email_hash TEXT,
	socket_ip TEXT,
	reported_ip TEXT,
	device_id TEXT,
	user_agent TEXT,
	session_id TEXT
, actor_user_id TEXT, detail TEXT);
CREATE TABLE events (
	id TEXT PRIMARY KEY,
	organization_id TEXT NOT NULL,
	event_id TEXT NOT NULL,
	user_id TEXT NOT NULL,
	event_name TEXT NOT NULL,
	event_category TEXT NOT NULL,
	source TEXT,
	properties TEXT NOT NULL,
	occurred_at DATETIME NOT NULL,
	received_at DATETIME NOT NULL,
	fingerprint TEXT NOT NULL
);
CREATE TABLE event_backlog (
	id TEXT PRIMARY KEY,
	organization_id TEXT NOT NULL,
	user_id TEXT NOT NULL,
	event_name TEXT NOT NULL,
	event_category TEXT NOT NULL,
	occurred_at DATETIME NOT NULL,
	received_at DATETIME NOT NULL
);
CREATE TABLE event_daily_counts (
	organization_id TEXT NOT NULL,
	day TEXT NOT NULL,
	event_name TEXT NOT NULL,
	event_category TEXT NOT NULL,
	count BIGINT NOT NULL,
	PRIMARY KEY (organization_id, day, event_name, event_category)
);
CREATE TABLE user_event_stats (
	user_id TEXT PRIMARY KEY,
	organization_id TEXT NOT NULL,
	total BIGINT NOT NULL,
	last_event_at DATETIME NOT NULL
);
CREATE TABLE user_event_days (
	user_id TEXT NOT NULL,
	organization_id TEXT NOT NULL,
	day TEXT NOT NULL,
	count BIGINT NOT NULL,
	PRIMARY KEY (user_id, day)
);
CREATE TABLE user_counts (
	organization_id TEXT NOT NULL,
	role TEXT NOT NULL,
	status TEXT NOT NULL,
	count BIGINT NOT NULL,
	changes BIGINT NOT NULL,
	PRIMARY KEY (organization_id, role, status)
);
CREATE TABLE revocation_counter (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	seq BIGINT NOT NULL
);
CREATE TABLE session_revocations (
	seq BIGINT PRIMARY KEY,
	session_id TEXT NOT NULL,
	revoked_at DATETIME NOT NULL
);
CREATE TABLE client_secrets (
	id TEXT PRIMARY KEY,
	client_ref TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
	hash BLOB NOT NULL,
	hint TEXT NOT NULL,
	created_at DATETIME NOT NULL,
	expires_at DATETIME,
	revoked_at DATETIME
);
CREATE TABLE service_sessions (
	id TEXT PRIMARY KEY,
	client_ref TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
	client_id TEXT NOT NULL,
	secret_id TEXT NOT NULL,
	organization_id TEXT NOT NULL,
	scopes TEXT NOT NULL,
	created_at DATETIME NOT NULL,
	expires_at DATETIME NOT NULL,
	revoked_at DATETIME,
	revoked_reason TEXT
);
INSERT INTO "schema_migrations" VALUES(1,'auth','2026-12-03 18:50:54.188985662+00:00');
INSERT INTO "schema_migrations" VALUES(2,'user listing indexes','2026-12-03 18:50:54.189534632+00:00');
INSERT INTO "schema_migrations" VALUES(3,'audit actors','2026-12-03 18:50:54.190161001+00:00');
INSERT INTO "schema_migrations" VALUES(4,'analytics','2026-12-03 18:50:54.191467911+00:00');
INSERT INTO "schema_migrations" VALUES(5,'session roles','2026-12-03 18:50:54.191962575+00:00');
INSERT INTO "schema_migrations" VALUES(6,'user counts','2026-12-03 18:50:54.192625997+00:00');
INSERT INTO "schema_migrations" VALUES(7,'session revocation log','2026-12-03 18:50:54.193117261+00:00');
INSERT INTO "schema_migrations" VALUES(8,'event backlog without the received_at index','2026-12-03 18:50:54.193302745+00:00');
INSERT INTO "schema_migrations" VALUES(9,'service clients','2026-12-03 18:50:54.194366344+00:00');
INSERT INTO "schema_migrations" VALUES(10,'decoy client','2026-12-03 18:50:54.194593878+00:00');
INSERT INTO "organizations" VALUES('96100c95-fc52-426e-b999-2b0f640a5746','Upgrade Org','2026-12-03 18:50:54.212279+00:00','2026-12-03 18:50:54.212279+00:00');
INSERT INTO "users" VALUES('01a23d3e-c7bc-71e2-8668-12b34e83d04e','96100c95-fc52-426e-b999-2b0f640a5746','admin@upgrade.test','admin@upgrade.test','Upgrade Admin','admin','active','$argon2id$v=19$m=19456,t=2,p=1$uN7zVtg6d0h5AO6gqf8jTg$b8HryzooLljrtvh9hGEaObjsFkbSCBcaM3McCCRvtss','2026-12-03 18:50:54.268123+00:00','2026-12-03 18:50:54.268123+00:00');
INSERT INTO "users" VALUES('01a23d3e-c899-7576-aad6-37e4aa0297d5','96100c95-fc52-426e-b999-2b0f640a5746','ada@upgrade.test','ada@upgrade.test','ada','manager','active','$argon2id$v=19$m=19456,t=2,p=1$ThOdB67jSYQa8JxCYYTgSg$tCrld6PBvSAe78IShnbEQaYa8f4BZovToEr8GZflTWE','2026-12-03 18:50:54.489358+00:00','2026-12-03 18:50:54.489358+00:00');
INSERT INTO "users" VALUES('01a23d3e-c8c9-7300-992c-8528d11a9689','96100c95-fc52-426e-b999-2b0f640a5746','grace@upgrade.test','grace@upgrade.test','grace','analyst','active','$argon2id$v=19$m=19456,t=2,p=1$fev3TXmx/M3y0HJ8F7PcFg$EymbuLEwrslm2os3FFL10j0RNfTIMkQGOFq/rugRz+0','2026-12-03 18:50:54.537196+00:00','2026-12-03 18:50:54.537196+00:00');
INSERT INTO "users" VALUES('01a23d3e-c8e1-789a-a50a-f23e6677e54a','96100c95-fc52-426e-b999-2b0f640a5746','linus@upgrade.test','linus@upgrade.test','linus','member','active','$argon2id$v=19$m=19456,t=2,p=1$JU/KMkKJtKH1oeSjZz5iAQ$4ORMLjQ2rwfFTlRWEB2AOw8rnC0gF6c1Gi9YMsrWvwc','2026-12-03 18:50:54.561564+00:00','2026-12-03 18:50:54.561564+00:00');
INSERT INTO "clients" VALUES('00000000-0000-0000-0000-000000000000','','decoy',NULL,'2000-01-01 00:00:00+00:00','2000-01-01 00:00:00+00:00','2000-01-01 00:00:00+00:00','');
INSERT INTO "clients" VALUES('2db2a1bc-0404-46e1-a893-2e088490704a','upgrade-web','Upgrade web',NULL,NULL,'2026-12-03 18:50:54.288469+00:00','2026-12-03 18:50:54.288469+00:00',NULL);
INSERT INTO "clients" VALUES('c4bcbae6-b17a-45bf-988d-5ff9c67ec7f5','nxc_jyn6xujkogi2hzfb2v6ycczewm','CRM sync','96100c95-fc52-426e-b999-2b0f640a5746',NULL,'2026-12-03 18:50:54.307398+00:00','2026-12-03 18:50:54.307398+00:00','users:list users:read events:write events:write_any_user analytics:read');
INSERT INTO "refresh_sessions" VALUES('341c2c8c-cca7-4c42-85cf-eb63e6fb2d24','01a23d3e-c7bc-71e2-8668-12b34e83d04e','96100c95-fc52-426e-b999-2b0f640a5746','upgrade-web',NULL,X'10405A8B2E3D83DB895B63D7AEFD9513536B5D3D243FC987487ED0F8EF77B236',1,'2026-12-03 18:50:54.462773+00:00','2026-12-03 18:50:54.41372+00:00','2026-12-03 18:50:54.462773+00:00','2126-11-09 18:50:54.41372+00:00',NULL,NULL,'admin');
INSERT INTO "refresh_sessions" VALUES('ec93e536-8637-4ae8-acd1-a6b6646d42af','01a23d3e-c7bc-71e2-8668-12b34e83d04e','96100c95-fc52-426e-b999-2b0f640a5746','upgrade-web',NULL,X'EE50D6FBD40958C6E526E363D833951DC584A04321E90AC98C1E74F86D3D20A9',1,'2026-12-03 18:50:54.717646+00:00','2026-12-03 18:50:54.688966+00:00','2026-12-03 18:50:54.717646+00:00','2126-11-09 18:50:54.688966+00:00',NULL,NULL,'admin');
INSERT INTO "signing_keys" VALUES('20261203-eNpsxPUg','ES256','{"alg":"ES256","crv":"P-256","kid":"20261203-eNpsxPUg","kty":"EC","use":"sig","x":"b--EOXuC3veAS6SwUdHiZaCyPxHO2W42PyZ8jwfRWBo","y":"7_o9NmQPdb7RRNOGk8gouXwlOXMLSLWp74RGB9auEkE"}',X'7ECBB16357263A1BA61022F00B9E46646329BBBD2BB9B774A4D351B6DC788E8AF79EBEF61CA1D88BF3938C760790EB93D9679397E060A36E5EF2D97E4E7234C5F16A0A4E5F3F76A57AEFC1DC9B98D3762A3B6950EA3B860BD3A1033BD45C59B8D4EF85023602846218AA5512049D2EA35BCA509F538677224BE156770AB633D4CD706C9F028ACADD6EA9329FB05D688F64CC8BB480666679F2D85556D1F3BD152AE82639F9CF','2026-12-03 18:50:54.395798+00:00','2026-12-03 18:50:54.395798+00:00');
INSERT INTO "auth_events" VALUES('01a23d3e-c784-7759-9f46-54587cac76ec','2026-12-03 18:50:54.212279+00:00','organization_create','success',NULL,'96100c95-fc52-426e-b999-2b0f640a5746',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO "auth_events" VALUES('01a23d3e-c7bc-7ae5-965b-dae148b7edf0','2026-12-03 18:50:54.268123+00:00','user_create','success','01a23d3e-c7bc-71e2-8668-12b34e83d04e','96100c95-fc52-426e-b999-2b0f640a5746',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,'role=admin status=active');
INSERT INTO "auth_events" VALUES('01a23d3e-c7e3-7a6a-837b-276fc6cf3d23','2026-12-03 18:50:54.307398+00:00','client_create','success',NULL,'96100c95-fc52-426e-b999-2b0f640a5746',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,'client nxc_jyn6xujkogi2hzfb2v6ycczewm (CRM sync): scopes "users:list users:read events:write events:write_any_user analytics:read"');
INSERT INTO "auth_events" VALUES('01a23d3e-c87d-7593-978c-2d04d4a233c9','2026-12-03 18:50:54.41372+00:00','login','success','01a23d3e-c7bc-71e2-8668-12b34e83d04e','96100c95-fc52-426e-b999-2b0f640a5746','upgrade-web',NULL,'127.0.0.1',NULL,NULL,'Go-http-client/1.1','341c2c8c-cca7-4c42-85cf-eb63e6fb2d24',NULL,NULL);
INSERT INTO "auth_events" VALUES('01a23d3e-c87f-7262-babf-fca35902f204','2026-12-03 18:50:54.462773+00:00','refresh','success','01a23d3e-c7bc-71e2-8668-12b34e83d04e','96100c95-fc52-426e-b999-2b0f640a5746','upgrade-web',NULL,'127.0.0.1',NULL,NULL,'Go-http-client/1.1','341c2c8c-cca7-4c42-85cf-eb63e6fb2d24',NULL,NULL);
INSERT INTO "auth_events" VALUES('01a23d3e-c899-7c24-9ef8-9543d393e860','2026-12-03 18:50:54.489358+00:00','user_create','success','01a23d3e-c899-7576-aad6-37e4aa0297d5','96100c95-fc52-426e-b999-2b0f640a5746','upgrade-web',NULL,NULL,NULL,NULL,NULL,'341c2c8c-cca7-4c42-85cf-eb63e6fb2d24','01a23d3e-c7bc-71e2-8668-12b34e83d04e','role=manager status=active');
INSERT INTO "auth_events" VALUES('01a23d3e-c8c9-7aaf-92cf-1d82ea515b33','2026-12-03 18:50:54.537196+00:00','user_create','success','01a23d3e-c8c9-7300-992c-8528d11a9689','96100c95-fc52-426e-b999-2b0f640a5746','upgrade-web',NULL,NULL,NULL,NULL,NULL,'341c2c8c-cca7-4c42-85cf-eb63e6fb2d24','01a23d3e-c7bc-71e2-8668-12b34e83d04e','role=analyst status=active');
INSERT INTO "auth_events" VALUES('01a23d3e-c8e2-706d-9b44-db9b7e2ab9fb','2026-12-03 18:50:54.561564+00:00','user_create','success','01a23d3e-c8e1-789a-a50a-f23e6677e54a','96100c95-fc52-426e-b999-2b0f640a5746','upgrade-web',NULL,NULL,NULL,NULL,NULL,'341c2c8c-cca7-4c42-85cf-eb63e6fb2d24','01a23d3e-c7bc-71e2-8668-12b34e83d04e','role=member status=active');
INSERT INTO "auth_events" VALUES('01a23d3e-c8f5-702f-b0e6-2a43045802e2','2026-12-03 18:50:54.580808+00:00','token','success',NULL,'96100c95-fc52-426e-b999-2b0f640a5746','nxc_jyn6xujkogi2hzfb2v6ycczewm',NULL,'127.0.0.1',NULL,NULL,'Go-http-client/1.1','3a2b7b6e-4a44-42cd-b27a-94efd5f19045',NULL,'client_credentials: users:list users:read events:write events:write_any_user analytics:read');
INSERT INTO "auth_events" VALUES('01a23d3e-c97c-7987-9872-fbcf3681b394','2026-12-03 18:50:54.688966+00:00','login','success','01a23d3e-c7bc-71e2-8668-12b34e83d04e','96100c95-fc52-426e-b999-2b0f640a5746','upgrade-web',NULL,'127.0.0.1',NULL,NULL,'Go-http-client/1.1','ec93e536-8637-4ae8-acd1-a6b6646d42af',NULL,NULL);
INSERT INTO "auth_events" VALUES('01a23d3e-c97d-7cc3-8602-2730c169bd80','2026-12-03 18:50:54.717646+00:00','refresh','success','01a23d3e-c7bc-71e2-8668-12b34e83d04e','96100c95-fc52-426e-b999-2b0f640a5746','upgrade-web',NULL,'127.0.0.1',NULL,NULL,'Go-http-client/1.1','ec93e536-8637-4ae8-acd1-a6b6646d42af',NULL,NULL);
INSERT INTO "events" VALUES('01a23d3e-c8e2-7d7c-a20c-4d5ee5a8806f','96100c95-fc52-426e-b999-2b0f640a5746','c9eb24d0-5b65-4802-bcaf-39a40d092fbd','01a23d3e-c7bc-71e2-8668-12b34e83d04e','page_viewed','upgrade','web','{"n":0,"path":"/p/0"}','2026-11-20 08:15:00.123+00:00','2026-12-03 18:50:54.562878+00:00','3cc492e9257eb188f837e1a7d997a6d8bd8440c95a605e5b1faf0a7ccc876d53');
INSERT INTO "events" VALUES('01a23d3e-c8e5-7409-9554-116dcc9b30f4','96100c95-fc52-426e-b999-2b0f640a5746','590b9d6f-d04a-4e95-8a0c-494e1b096a7b','01a23d3e-c7bc-71e2-8668-12b34e83d04e','signup_completed','upgrade','web','{"n":1,"path":"/p/1"}','2026-11-21 09:15:00.123+00:00','2026-12-03 18:50:54.565261+00:00','7e7613f15dbba7e0f971784a6b06e64284a7c49823645ff1f6b4091613d3cc0e');
INSERT INTO "events" VALUES('01a23d3e-c8e7-7c53-8082-de045cd117a0','96100c95-fc52-426e-b999-2b0f640a5746','f7c0b1f5-968b-47fe-a999-784442663ea9','01a23d3e-c7bc-71e2-8668-12b34e83d04e','report_exported','upgrade','web','{"n":2,"path":"/p/2"}','2026-11-22 10:15:00.123+00:00','2026-12-03 18:50:54.567804+00:00','7528d06c02a62cdb10c060c5e4b2d1647f9fd09f1d9e0ad0a698e3e2cd8bdd9c');
INSERT INTO "events" VALUES('01a23d3e-c8e9-7b5b-a755-fcefa8cf7f44','96100c95-fc52-426e-b999-2b0f640a5746','49b1c27b-1134-4df5-99fc-2caa6a9970ea','01a23d3e-c7bc-71e2-8668-12b34e83d04e','page_viewed','upgrade','web','{"n":3,"path":"/p/3"}','2026-11-20 11:15:00.123+00:00','2026-12-03 18:50:54.569741+00:00','f680fa2ed35d0cca574479bc559b8ea33f77f7a05e5d74c7c2f0c7dbc5e7dfb5');
INSERT INTO "events" VALUES('01a23d3e-c8eb-7742-8da6-f268a2d43f3d','96100c95-fc52-426e-b999-2b0f640a5746','f8c72862-59c5-4c72-8a5d-e062d82df7d9','01a23d3e-c7bc-71e2-8668-12b34e83d04e','signup_completed','upgrade','web','{"n":4,"path":"/p/4"}','2026-11-21 12:15:00.123+00:00','2026-12-03 18:50:54.571472+00:00','08a4ec9303cedb637202545a3c92818d859256bbe6ad9fe227259851cfc40ae5');
INSERT INTO "events" VALUES('01a23d3e-c8ed-73f2-91ee-da4ebeb84315','96100c95-fc52-426e-b999-2b0f640a5746','a82f3b8f-c6cf-4bd9-b8a5-044b421a9bee','01a23d3e-c7bc-71e2-8668-12b34e83d04e','report_exported','upgrade','web','{"n":5,"path":"/p/5"}','2026-11-22 13:15:00.123+00:00','2026-12-03 18:50:54.573254+00:00','74c7c85d27cb9591073f72c52cfe29d8915ca0a007e700aed9eed1657fb614b2');
INSERT INTO "events" VALUES('01a23d3e-c8ef-71bd-9383-ff07916b50d5','96100c95-fc52-426e-b999-2b0f640a5746','5f4643b6-bbcc-49e5-b122-13cb896d4b98','01a23d3e-c7bc-71e2-8668-12b34e83d04e','page_viewed','upgrade','web','{"n":6,"path":"/p/6"}','2026-11-20 14:15:00.123+00:00','2026-12-03 18:50:54.575111+00:00','3f5d277474eb45bc7860ee96106a649556552b1e5cfc28ed67eeaff1b46ddc7b');
INSERT INTO "events" VALUES('01a23d3e-c8f0-7e0c-b5e6-771601deec14','96100c95-fc52-426e-b999-2b0f640a5746','d9b0ac4d-2124-4040-81f6-cf940c27be91','01a23d3e-c7bc-71e2-8668-12b34e83d04e','signup_completed','upgrade','web','{"n":7,"path":"/p/7"}','2026-11-21 15:15:00.123+00:00','2026-12-03 18:50:54.576917+00:00','310d5b67c88ad036b9a0e869c95647efb335015d7f0af99b7ce6e89cc7d73e7e');
INSERT INTO "events" VALUES('01a23d3e-c8f2-7ca9-a7de-21caf8d3c80b','96100c95-fc52-426e-b999-2b0f640a5746','dcfb8eb2-9174-482e-815b-0f556e716073','01a23d3e-c7bc-71e2-8668-12b34e83d04e','report_exported','upgrade','web','{"n":8,"path":"/p/8"}','2026-11-22 16:15:00.123+00:00','2026-12-03 18:50:54.578826+00:00','520ae39d7a143ad67233ee7272796bb1a878e6509aa26804e3a16b472752762d');
INSERT INTO "events" VALUES('01a23d3e-c8f6-72f7-89bc-d89c735cd1b2','96100c95-fc52-426e-b999-2b0f640a5746','a7765be8-05fb-4dc4-adfe-25680556cd9f','01a23d3e-c899-7576-aad6-37e4aa0297d5','crm_synced','upgrade',NULL,'{}','2026-11-22 23:59:59.999+00:00','2026-12-03 18:50:54.582191+00:00','f6ed6b384aa763a01a2eb4ffadcb74f1ed4b01294dfd6b8e9481b78053aa9f6d');
INSERT INTO "event_daily_counts" VALUES('96100c95-fc52-426e-b999-2b0f640a5746','2026-11-20','page_viewed','upgrade',3);
INSERT INTO "event_daily_counts" VALUES('96100c95-fc52-426e-b999-2b0f640a5746','2026-11-21','signup_completed','upgrade',3);
INSERT INTO "event_daily_counts" VALUES('96100c95-fc52-426e-b999-2b0f640a5746','2026-11-22','crm_synced','upgrade',1);
INSERT INTO "event_daily_counts" VALUES('96100c95-fc52-426e-b999-2b0f640a5746','2026-11-22','report_exported','upgrade',3);
INSERT INTO "user_event_stats" VALUES('01a23d3e-c7bc-71e2-8668-12b34e83d04e','96100c95-fc52-426e-b999-2b0f640a5746',9,'2026-11-22 16:15:00.123+00:00');
INSERT INTO "user_event_stats" VALUES('01a23d3e-c899-7576-aad6-37e4aa0297d5','96100c95-fc52-426e-b999-2b0f640a5746',1,'2026-11-22 23:59:59.999+00:00');
INSERT INTO "user_event_days" VALUES('01a23d3e-c7bc-71e2-8668-12b34e83d04e','96100c95-fc52-426e-b999-2b0f640a5746','2026-11-20',3);
INSERT INTO "user_event_days" VALUES('01a23d3e-c7bc-71e2-8668-12b34e83d04e','96100c95-fc52-426e-b999-2b0f640a5746','2026-11-21',3);
INSERT INTO "user_event_days" VALUES('01a23d3e-c7bc-71e2-8668-12b34e83d04e','96100c95-fc52-426e-b999-2b0f640a5746','2026-11-22',3);
INSERT INTO "user_event_days" VALUES('01a23d3e-c899-7576-aad6-37e4aa0297d5','96100c95-fc52-426e-b999-2b0f640a5746','2026-11-22',1);
INSERT INTO "user_counts" VALUES('96100c95-fc52-426e-b999-2b0f640a5746','admin','active',1,1);
INSERT INTO "user_counts" VALUES('96100c95-fc52-426e-b999-2b0f640a5746','manager','active',1,1);
INSERT INTO "user_counts" VALUES('96100c95-fc52-426e-b999-2b0f640a5746','analyst','active',1,1);
INSERT INTO "user_counts" VALUES('96100c95-fc52-426e-b999-2b0f640a5746','member','active',1,1);
INSERT INTO "revocation_counter" VALUES(1,0);
INSERT INTO "client_secrets" VALUES('00000000-0000-0000-0000-000000000001','00000000-0000-0000-0000-000000000000',X'0000000000000000000000000000000000000000000000000000000000000000','....','2000-01-01 00:00:00+00:00',NULL,NULL);
INSERT INTO "client_secrets" VALUES('00000000-0000-0000-0000-000000000002','00000000-0000-0000-0000-000000000000',X'0000000000000000000000000000000000000000000000000000000000000000','....','2000-01-01 00:00:00+00:00',NULL,NULL);
INSERT INTO "client_secrets" VALUES('a2b92471-6f7c-428c-b06d-e4dbf3d81ba7','c4bcbae6-b17a-45bf-988d-5ff9c67ec7f5',X'385CA4778A5B603B0FE18B2709B8E98840F08A7CBB651AF62856B8AA3BA0584D','1dK8','2026-12-03 18:50:54.307398+00:00',NULL,NULL);
INSERT INTO "service_sessions" VALUES('3a2b7b6e-4a44-42cd-b27a-94efd5f19045','c4bcbae6-b17a-45bf-988d-5ff9c67ec7f5','nxc_jyn6xujkogi2hzfb2v6ycczewm','a2b92471-6f7c-428c-b06d-e4dbf3d81ba7','96100c95-fc52-426e-b999-2b0f640a5746','users:list users:read events:write events:write_any_user analytics:read','2026-12-03 18:50:54.580808+00:00','2026-12-03 19:05:54.580808+00:00',NULL,NULL);
CREATE UNIQUE INDEX users_email_key ON users (email_key);
CREATE INDEX users_organization_created ON users (organization_id, created_at, id);
CREATE UNIQUE INDEX clients_client_id ON clients (client_id);
CREATE INDEX refresh_sessions_user ON refresh_sessions (user_id);
CREATE INDEX auth_events_user ON auth_events (user_id, occurred_at);
CREATE INDEX auth_events_organization ON auth_events (organization_id, occurred_at);
CREATE INDEX auth_events_email_hash ON auth_events (email_hash, occurred_at);
CREATE INDEX users_organization ON users (organization_id);
CREATE INDEX users_organization_status_created ON users (organization_id, status, created_at, id);
CREATE INDEX users_organization_role_created ON users (organization_id, role, created_at, id);
CREATE INDEX users_organization_status_role_created ON users (organization_id, status, role, created_at, id);
CREATE UNIQUE INDEX events_organization_event_id ON events (organization_id, event_id);
CREATE INDEX events_organization_occurred ON events (organization_id, occurred_at, id);
CREATE INDEX events_organization_user_occurred ON events (organization_id, user_id, occurred_at, id);
CREATE TRIGGER users_count_insert AFTER INSERT ON users BEGIN
	INSERT INTO user_counts (organization_id, role, status, count, changes) VALUES (NEW.organization_id, NEW.role, NEW.status, 1, 1)
	ON CONFLICT (organization_id, role, status) DO UPDATE SET count = count + 1, changes = changes + 1;
END;
CREATE TRIGGER users_count_update AFTER UPDATE OF organization_id, role, status ON users
WHEN OLD.organization_id IS NOT NEW.organization_id OR OLD.role IS NOT NEW.role OR OLD.status IS NOT NEW.status BEGIN
	UPDATE user_counts SET count = count - 1, changes = changes + 1
	WHERE organization_id = OLD.organization_id AND role = OLD.role AND status = OLD.status;
	INSERT INTO user_counts (organization_id, role, status, count, changes) VALUES (NEW.organization_id, NEW.role, NEW.status, 1, 1)
	ON CONFLICT (organization_id, role, status) DO UPDATE SET count = count + 1, changes = changes + 1;
END;
CREATE TRIGGER users_count_delete AFTER DELETE ON users BEGIN
	UPDATE user_counts SET count = count - 1, changes = changes + 1
	WHERE organization_id = OLD.organization_id AND role = OLD.role AND status = OLD.status;
END;
CREATE INDEX session_revocations_revoked_at ON session_revocations (revoked_at);
CREATE INDEX client_secrets_client ON client_secrets (client_ref);
CREATE INDEX service_sessions_client_expires ON service_sessions (client_ref, expires_at);
CREATE INDEX service_sessions_secret_created ON service_sessions (secret_id, created_at);
