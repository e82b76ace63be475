--
-- PostgreSQL database dump
--


-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: user_counts_add(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.user_counts_add() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		INSERT INTO user_counts (organization_id, role, status, count, changes)
		SELECT organization_id, role, status, count(*), count(*) FROM new_users
		GROUP BY organization_id, role, status ORDER BY organization_id, role, status
		ON CONFLICT (organization_id, role, status) DO UPDATE
		SET count = user_counts.count + EXCLUDED.count, changes = user_counts.changes + EXCLUDED.changes;
	ELSIF TG_OP = 'DELETE' THEN
		INSERT INTO user_counts (organization_id, role, status, count, changes)
		SELECT organization_id, role, status, -count(*), count(*) FROM old_users
		GROUP BY organization_id, role, status ORDER BY organization_id, role, status
		ON CONFLICT (organization_id, role, status) DO UPDATE
		SET count = user_counts.count + EXCLUDED.count, changes = user_counts.changes + EXCLUDED.changes;
	ELSE
		-- Rows that moved between counters (organization, role or status changed): both counters' changes move
		-- on, whatever the net count, so that a listing's version sees every change of its membership.
		INSERT INTO user_counts (organization_id, role, status, count, changes)
		SELECT organization_id, role, status, sum(n), count(*) FROM (
			SELECT n.organization_id, n.role, n.status, 1 AS n FROM new_users n JOIN old_users o ON o.id = n.id
			WHERE (n.organization_id, n.role, n.status) IS DISTINCT FROM (o.organization_id, o.role, o.status)
			UNION ALL SELECT o.organization_id, o.role, o.status, -1 FROM old_users o JOIN new_users n ON n.id = o.id
			WHERE (n.organization_id, n.role, n.status) IS DISTINCT FROM (o.organization_id, o.role, o.status)) d
		GROUP BY organization_id, role, status ORDER BY organization_id, role, status
		ON CONFLICT (organization_id, role, status) DO UPDATE
		SET count = user_counts.count + EXCLUDED.count, changes = user_counts.changes + EXCLUDED.changes;
	END IF;
	RETURN NULL;
END $$;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: auth_events; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.auth_events (
    id uuid NOT NULL,
    occurred_at timestamp with time zone NOT NULL,
    action text NOT NULL,
    result text NOT NULL,
    user_id uuid,
    organization_id uuid,
    client_id text,
    email_hash text,
    socket_ip text,
    reported_ip text,
    device_id text,
    user_agent text,
    session_id uuid,
    actor_user_id uuid,
    detail text
);


--
-- Name: client_secrets; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.client_secrets (
    id uuid NOT NULL,
    client_ref uuid NOT NULL,
    hash bytea NOT NULL,
    hint text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone,
    revoked_at timestamp with time zone
);


--
-- Name: clients; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.clients (
    id uuid NOT NULL,
    client_id text NOT NULL,
    name text NOT NULL,
    organization_id uuid,
    disabled_at timestamp with time zone,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    scopes text
);


--
-- Name: event_backlog; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.event_backlog (
    id uuid NOT NULL,
    organization_id uuid NOT NULL,
    user_id uuid NOT NULL,
    event_name text NOT NULL,
    event_category text NOT NULL,
    occurred_at timestamp with time zone NOT NULL,
    received_at timestamp with time zone NOT NULL
);


--
-- Name: event_daily_counts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.event_daily_counts (
    organization_id uuid NOT NULL,
    day text NOT NULL,
    event_name text NOT NULL,
    event_category text NOT NULL,
    count bigint NOT NULL
);


--
-- Name: events; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.events (
    id uuid NOT NULL,
    organization_id uuid NOT NULL,
    event_id uuid NOT NULL,
    user_id uuid NOT NULL,
    event_name text NOT NULL,
    event_category text NOT NULL,
    source text,
    properties json NOT NULL,
    occurred_at timestamp with time zone NOT NULL,
    received_at timestamp with time zone NOT NULL,
    fingerprint text NOT NULL
);


--
-- Name: organizations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.organizations (
    id uuid NOT NULL,
    name text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);


--
-- Name: refresh_sessions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.refresh_sessions (
    id uuid NOT NULL,
    user_id uuid NOT NULL,
    organization_id uuid NOT NULL,
    client_id text NOT NULL,
    device_id text,
    salt bytea NOT NULL,
    generation bigint NOT NULL,
    rotated_at timestamp with time zone,
    created_at timestamp with time zone NOT NULL,
    last_used_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    revoked_at timestamp with time zone,
    revoked_reason text,
    role text
);


--
-- Name: revocation_counter; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.revocation_counter (
    id integer NOT NULL,
    seq bigint NOT NULL,
    CONSTRAINT revocation_counter_id_check CHECK ((id = 1))
);


--
-- Name: schema_migrations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.schema_migrations (
    version integer NOT NULL,
    name text NOT NULL,
    applied_at timestamp with time zone NOT NULL
);


--
-- Name: service_sessions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.service_sessions (
    id uuid NOT NULL,
    client_ref uuid NOT NULL,
    client_id text NOT NULL,
    secret_id uuid NOT NULL,
    organization_id uuid NOT NULL,
    scopes text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    revoked_at timestamp with time zone,
    revoked_reason text
);


--
-- Name: session_revocations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.session_revocations (
    seq bigint NOT NULL,
    session_id uuid NOT NULL,
    revoked_at timestamp with time zone NOT NULL
);


--
-- Name: signing_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.signing_keys (
    id text NOT NULL,
    algorithm text NOT NULL,
    public_jwk text NOT NULL,
    sealed_private_key bytea NOT NULL,
    created_at timestamp with time zone NOT NULL,
    active_from timestamp with time zone NOT NULL
);


--
-- Name: user_counts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.user_counts (
    organization_id uuid NOT NULL,
    role text NOT NULL,
    status text NOT NULL,
    count bigint NOT NULL,
    changes bigint NOT NULL
);


--
-- Name: user_event_days; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.user_event_days (
    user_id uuid NOT NULL,
    organization_id uuid NOT NULL,
    day text NOT NULL,
    count bigint NOT NULL
);


--
-- Name: user_event_stats; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.user_event_stats (
    user_id uuid NOT NULL,
    organization_id uuid NOT NULL,
    total bigint NOT NULL,
    last_event_at timestamp with time zone NOT NULL
);


--
-- Name: users; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.users (
    id uuid NOT NULL,
    organization_id uuid NOT NULL,
    email text NOT NULL,
    email_key text NOT NULL,
    name text NOT NULL,
    role text NOT NULL,
    status text NOT NULL,
    password_hash text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    CONSTRAINT users_role_check CHECK ((role = ANY (ARRAY['admin'::text, 'manager'::text, 'analyst'::text, 'member'::text]))),
    CONSTRAINT users_status_check CHECK ((status = ANY (ARRAY['active'::text, 'inactive'::text])))
);


--
-- Data for Name: auth_events; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.auth_events VALUES ('01a23d3e-cd22-7617-934d-68b258e67e86', '2026-12-03 18:50:55.649609+00', 'organization_create', 'success', NULL, '4e8a0a68-54a9-4328-b696-8ebb985d465d', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO public.auth_events VALUES ('01a23d3e-cd5f-7730-8b74-04e7870ec505', '2026-12-03 18:50:55.707973+00', 'user_create', 'success', '01a23d3e-cd5b-7ed7-bdc9-0cf7630705c5', '4e8a0a68-54a9-4328-b696-8ebb985d465d', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'role=admin status=active');
INSERT INTO public.auth_events VALUES ('01a23d3e-cd91-7c3e-b6a9-56b23b65b920', '2026-12-03 18:50:55.760352+00', 'client_create', 'success', NULL, '4e8a0a68-54a9-4328-b696-8ebb985d465d', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'client nxc_ueu7w7tgsbz33s3bgixrhtdpd4 (CRM sync): scopes "users:list users:read events:write events:write_any_user analytics:read"');
INSERT INTO public.auth_events VALUES ('01a23d3e-ce2c-7784-bcbf-638421773532', '2026-12-03 18:50:55.869105+00', 'login', 'success', '01a23d3e-cd5b-7ed7-bdc9-0cf7630705c5', '4e8a0a68-54a9-4328-b696-8ebb985d465d', 'upgrade-web', NULL, '127.0.0.1', NULL, NULL, 'Go-http-client/1.1', '66addd21-01cf-4eeb-aea9-a06da26a5e26', NULL, NULL);
INSERT INTO public.auth_events VALUES ('01a23d3e-ce2f-75d3-8dd8-1983383fc383', '2026-12-03 18:50:55.918686+00', 'refresh', 'success', '01a23d3e-cd5b-7ed7-bdc9-0cf7630705c5', '4e8a0a68-54a9-4328-b696-8ebb985d465d', 'upgrade-web', NULL, '127.0.0.1', NULL, NULL, 'Go-http-client/1.1', '66addd21-01cf-4eeb-aea9-a06da26a5e26', NULL, NULL);
INSERT INTO public.auth_events VALUES ('01a23d3e-ce4a-7b9f-a8ed-4b1ade45d225', '2026-12-03 18:50:55.944511+00', 'user_create', 'success', '01a23d3e-ce48-77ca-b73f-e3aa86f367cd', '4e8a0a68-54a9-4328-b696-8ebb985d465d', 'upgrade-web', NULL, NULL, NULL, NULL, NULL, '66addd21-01cf-4eeb-aea9-a06da26a5e26', '01a23d3e-cd5b-7ed7-bdc9-0cf7630705c5', 'role=manager status=active');
INSERT INTO public.auth_events VALUES ('01a23d3e-ce7a-7add-9994-bf82e6bc99b2', '2026-12-03 18:50:55.994104+00', 'user_create', 'success', '01a23d3e-ce7a-7196-8766-2b671de67d14', '4e8a0a68-54a9-4328-b696-8ebb985d465d', 'upgrade-web', NULL, NULL, NULL, NULL, NULL, '66addd21-01cf-4eeb-aea9-a06da26a5e26', '01a23d3e-cd5b-7ed7-bdc9-0cf7630705c5', 'role=analyst status=active');
INSERT INTO public.auth_events VALUES ('01a23d3e-ce94-70e3-8f98-67223989e6f8', '2026-12-03 18:50:56.01943+00', 'user_create', 'success', '01a23d3e-ce93-7691-aa55-69a62e99ef2e', '4e8a0a68-54a9-4328-b696-8ebb985d465d', 'upgrade-web', NULL, NULL, NULL, NULL, NULL, '66addd21-01cf-4eeb-aea9-a06da26a5e26', '01a23d3e-cd5b-7ed7-bdc9-0cf7630705c5', 'role=member status=active');
INSERT INTO public.auth_events VALUES ('01a23d3e-ceb2-70fc-8836-9c68aadd7752', '2026-12-03 18:50:56.048319+00', 'token', 'success', NULL, '4e8a0a68-54a9-4328-b696-8ebb985d465d', 'nxc_ueu7w7tgsbz33s3bgixrhtdpd4', NULL, '127.0.0.1', NULL, NULL, 'Go-http-client/1.1', 'ba294e5a-785c-4fd3-9a31-8c1b5a62c5c8', NULL, 'client_credentials: users:list users:read events:write events:write_any_user analytics:read');
INSERT INTO public.auth_events VALUES ('01a23d3e-cf40-7f04-80ca-32f4766bcc9d', '2026-12-03 18:50:56.160368+00', 'login', 'success', '01a23d3e-cd5b-7ed7-bdc9-0cf7630705c5', '4e8a0a68-54a9-4328-b696-8ebb985d465d', 'upgrade-web', NULL, '127.0.0.1', NULL, NULL, 'Go-http-client/1.1', '8d3fc103-6a55-4733-9929-f7ef260a6e67', NULL, NULL);
INSERT INTO public.auth_events VALUES ('01a23d3e-cf43-7471-b807-40c627a00193', '2026-12-03 18:50:56.194734+00', 'refresh', 'success', '01a23d3e-cd5b-7ed7-bdc9-0cf7630705c5', '4e8a0a68-54a9-4328-b696-8ebb985d465d', 'upgrade-web', NULL, '127.0.0.1', NULL, NULL, 'Go-http-client/1.1', '8d3fc103-6a55-4733-9929-f7ef260a6e67', NULL, NULL);


--
-- Data for Name: client_secrets; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.client_secrets VALUES ('00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000000', '\x0000000000000000000000000000000000000000000000000000000000000000', '....', '2000-01-01 00:00:00+00', NULL, NULL);
INSERT INTO public.client_secrets VALUES ('00000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-000000000000', '\x0000000000000000000000000000000000000000000000000000000000000000', '....', '2000-01-01 00:00:00+00', NULL, NULL);
INSERT INTO public.client_secrets VALUES ('684dd3c0-f2ff-4e02-bce9-b80413006f6a', 'e847ce09-5563-4494-af52-690aa7e4d905', '\x5f374e7975ba1af452ccdce68e7b1e1685e700b07b4a92f48272896f16aee4a8', 'nqds', '2026-12-03 18:50:55.760352+00', NULL, NULL);


--
-- Data for Name: clients; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.clients VALUES ('00000000-0000-0000-0000-000000000000', '', 'decoy', NULL, '2000-01-01 00:00:00+00', '2000-01-01 00:00:00+00', '2000-01-01 00:00:00+00', '');
INSERT INTO public.clients VALUES ('ac5b33b6-7ac1-41cd-a7b9-05611676b43f', 'upgrade-web', 'Upgrade web', NULL, NULL, '2026-12-03 18:50:55.734477+00', '2026-12-03 18:50:55.734477+00', NULL);
INSERT INTO public.clients VALUES ('e847ce09-5563-4494-af52-690aa7e4d905', 'nxc_ueu7w7tgsbz33s3bgixrhtdpd4', 'CRM sync', '4e8a0a68-54a9-4328-b696-8ebb985d465d', NULL, '2026-12-03 18:50:55.760352+00', '2026-12-03 18:50:55.760352+00', 'users:list users:read events:write events:write_any_user analytics:read');


--
-- Data for Name: event_backlog; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: event_daily_counts; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.event_daily_counts VALUES ('4e8a0a68-54a9-4328-b696-8ebb985d465d', '2026-11-20', 'page_viewed', 'upgrade', 3);
INSERT INTO public.event_daily_counts VALUES ('4e8a0a68-54a9-4328-b696-8ebb985d465d', '2026-11-21', 'signup_completed', 'upgrade', 3);
INSERT INTO public.event_daily_counts VALUES ('4e8a0a68-54a9-4328-b696-8ebb985d465d', '2026-11-22', 'crm_synced', 'upgrade', 1);
INSERT INTO public.event_daily_counts VALUES ('4e8a0a68-54a9-4328-b696-8ebb985d465d', '2026-11-22', 'report_exported', 'upgrade', 3);


--
-- Data for Name: events; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.events VALUES ('01a23d3e-ce95-78ef-a754-20941d8b0e4d', '4e8a0a68-54a9-4328-b696-8ebb985d465d', '404d4ae4-9ac4-447c-914f-5ea0edf8109c', '01a23d3e-cd5b-7ed7-bdc9-0cf7630705c5', 'page_viewed', 'upgrade', 'web', '{"n":0,"path":"/p/0"}', '2026-11-20 08:15:00.123+00', '2026-12-03 18:50:56.021579+00', 'c5c5218ee0f2bc5d4033940b475fc3bc983823cb29df880d8f69600f195f40f3');
INSERT INTO public.events VALUES ('01a23d3e-ce99-7456-afe3-f7283f94e2a6', '4e8a0a68-54a9-4328-b696-8ebb985d465d', '4f501506-e3e2-4ff2-a0ea-288a07284ac8', '01a23d3e-cd5b-7ed7-bdc9-0cf7630705c5', 'signup_completed', 'upgrade', 'web', '{"n":1,"path":"/p/1"}', '2026-11-21 09:15:00.123+00', '2026-12-03 18:50:56.02528+00', '53550b26f6a5c2e96df2903eed96ccf0052186ebd186fc6d8ee6fcad234c634b');
INSERT INTO public.events VALUES ('01a23d3e-ce9f-7ea3-a1af-1a4bf54951c9', '4e8a0a68-54a9-4328-b696-8ebb985d465d', '06fe84e9-1ee0-489b-ba0c-5ccb827d2455', '01a23d3e-cd5b-7ed7-bdc9-0cf7630705c5', 'report_exported', 'upgrade', 'web', '{"n":2,"path":"/p/2"}', '2026-11-22 10:15:00.123+00', '2026-12-03 18:50:56.031955+00', 'a9c2ddcbca5f813bd9317f7348dc09676c5290da3d5c35f6900118be4fbda5b4');
INSERT INTO public.events VALUES ('01a23d3e-cea2-7bfe-a123-dfc4909a4340', '4e8a0a68-54a9-4328-b696-8ebb985d465d', '961cb9ff-cd40-49cd-98e1-0f394292bb24', '01a23d3e-cd5b-7ed7-bdc9-0cf7630705c5', 'page_viewed', 'upgrade', 'web', '{"n":3,"path":"/p/3"}', '2026-11-20 11:15:00.123+00', '2026-12-03 18:50:56.034782+00', 'c7c0647c337bcf5f6ffb3e20c2bec0e2dd382fdfb6fdd687a7e572634a54628b');
INSERT INTO public.events VALUES ('01a23d3e-cea5-71f4-8147-04caa0098ed8', '4e8a0a68-54a9-4328-b696-8ebb985d465d', '15cae454-ec33-4a8c-9ad8-a441b5d24611', '01a23d3e-cd5b-7ed7-bdc9-0cf7630705c5', 'signup_completed', 'upgrade', 'web', '{"n":4,"path":"/p/4"}', '2026-11-21 12:15:00.123+00', '2026-12-03 18:50:56.037124+00', '6831bdb8739ea9bfb6d0ddc8f1d429df463e4813aeaffa7bb6882985e88769c7');
INSERT INTO public.events VALUES ('01a23d3e-cea7-731a-85ed-91866b6409d2', '4e8a0a68-54a9-4328-b696-8ebb985d465d', '36730d91-51b5-4ba7-9416-6251444a1f78', '01a23d3e-cd5b-7ed7-bdc9-0cf7630705c5', 'report_exported', 'upgrade', 'web', '{"n":5,"path":"/p/5"}', '2026-11-22 13:15:00.123+00', '2026-12-03 18:50:56.0392+00', 'e0fa61b369b751dfb06eb9be33496520e71aa43bec22458977f06a2f5b4b54be');
INSERT INTO public.events VALUES ('01a23d3e-cea9-7293-b9b3-6806bb9ab97e', '4e8a0a68-54a9-4328-b696-8ebb985d465d', '872d0444-29f7-4cfc-9953-ee656eeae5c0', '01a23d3e-cd5b-7ed7-bdc9-0cf7630705c5', 'page_viewed', 'upgrade', 'web', '{"n":6,"path":"/p/6"}', '2026-11-20 14:15:00.123+00', '2026-12-03 18:50:56.041165+00', 'fd6ffc0ff8e80dc40def4b585226e64a1753a27e72583d1577615cd18c6c53cc');
INSERT INTO public.events VALUES ('01a23d3e-ceab-736a-8ce7-620dc2284c3e', '4e8a0a68-54a9-4328-b696-8ebb985d465d', '9a0489b0-7378-4d9c-bd15-6f8c25d04f4c', '01a23d3e-cd5b-7ed7-bdc9-0cf7630705c5', 'signup_completed', 'upgrade', 'web', '{"n":7,"path":"/p/7"}', '2026-11-21 15:15:00.123+00', '2026-12-03 18:50:56.043221+00', 'e771d69ac9d9b2f56c1a2a6aca5f2a46ba31edc617d2ac45154c2e976ab66ec6');
INSERT INTO public.events VALUES ('01a23d3e-cead-7311-a26d-7c984bc87f66', '4e8a0a68-54a9-4328-b696-8ebb985d465d', '5c47f4cc-caf2-4660-80dd-630ffa81d4d3', '01a23d3e-cd5b-7ed7-bdc9-0cf7630705c5', 'report_exported', 'upgrade', 'web', '{"n":8,"path":"/p/8"}', '2026-11-22 16:15:00.123+00', '2026-12-03 18:50:56.045198+00', '63ac62c6b29c43f1d44dab1ade9aaf99802c8ede45a00944d720afc139034612');
INSERT INTO public.events VALUES ('01a23d3e-ceb4-72a0-95af-2eb7e4625c20', '4e8a0a68-54a9-4328-b696-8ebb985d465d', '3c16881b-2801-457e-9d07-f68ec54fc0d4', '01a23d3e-ce48-77ca-b73f-e3aa86f367cd', 'crm_synced', 'upgrade', NULL, '{}', '2026-11-22 23:59:59.999+00', '2026-12-03 18:50:56.052169+00', 'd34abcf338d6be63dcc894b9f5d2766a3ba246e9bf905ced38fcf18379ca0633');


--
-- Data for Name: organizations; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.organizations VALUES ('4e8a0a68-54a9-4328-b696-8ebb985d465d', 'Upgrade Org', '2026-12-03 18:50:55.649609+00', '2026-12-03 18:50:55.649609+00');


--
-- Data for Name: refresh_sessions; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.refresh_sessions VALUES ('66addd21-01cf-4eeb-aea9-a06da26a5e26', '01a23d3e-cd5b-7ed7-bdc9-0cf7630705c5', '4e8a0a68-54a9-4328-b696-8ebb985d465d', 'upgrade-web', NULL, '\xaa489f35cd148655d929756dfa458dbc1b8e1dc4d4a137f284fb959d5c5a12db', 1, '2026-12-03 18:50:55.918686+00', '2026-12-03 18:50:55.869105+00', '2026-12-03 18:50:55.918686+00', '2126-11-09 18:50:55.869105+00', NULL, NULL, 'admin');
INSERT INTO public.refresh_sessions VALUES ('8d3fc103-6a55-4733-9929-f7ef260a6e67', '01a23d3e-cd5b-7ed7-bdc9-0cf7630705c5', '4e8a0a68-54a9-4328-b696-8ebb985d465d', 'upgrade-web', NULL, '\x46e023804a4ef0a46794c0510bc9ccb9f25315cd7bdada4a2692d6785db24966', 1, '2026-12-03 18:50:56.194734+00', '2026-12-03 18:50:56.160368+00', '2026-12-03 18:50:56.194734+00', '2126-11-09 18:50:56.160368+00', NULL, NULL, 'admin');


--
-- Data for Name: revocation_counter; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.revocation_counter VALUES (1, 0);


--
-- Data for Name: schema_migrations; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.schema_migrations VALUES (1, 'auth', '2026-12-03 18:50:55.584882+00');
INSERT INTO public.schema_migrations VALUES (2, 'user listing indexes', '2026-12-03 18:50:55.589979+00');
INSERT INTO public.schema_migrations VALUES (3, 'audit actors', '2026-12-03 18:50:55.590439+00');
INSERT INTO public.schema_migrations VALUES (4, 'analytics', '2026-12-03 18:50:55.606282+00');
INSERT INTO public.schema_migrations VALUES (5, 'session roles', '2026-12-03 18:50:55.607173+00');
INSERT INTO public.schema_migrations VALUES (6, 'user counts', '2026-12-03 18:50:55.612984+00');
INSERT INTO public.schema_migrations VALUES (7, 'session revocation log', '2026-12-03 18:50:55.61729+00');
INSERT INTO public.schema_migrations VALUES (8, 'event backlog without the received_at index', '2026-12-03 18:50:55.617753+00');
INSERT INTO public.schema_migrations VALUES (9, 'service clients', '2026-12-03 18:50:55.626288+00');
INSERT INTO public.schema_migrations VALUES (10, 'decoy client', '2026-12-03 18:50:55.62718+00');


--
-- Data for Name: service_sessions; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.service_sessions VALUES ('ba294e5a-785c-4fd3-9a31-8c1b5a62c5c8', 'e847ce09-5563-4494-af52-690aa7e4d905', 'nxc_ueu7w7tgsbz33s3bgixrhtdpd4', '684dd3c0-f2ff-4e02-bce9-b80413006f6a', '4e8a0a68-54a9-4328-b696-8ebb985d465d', 'users:list users:read events:write events:write_any_user analytics:read', '2026-12-03 18:50:56.048319+00', '2026-12-03 19:05:56.048319+00', NULL, NULL);


--
-- Data for Name: session_revocations; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: signing_keys; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.signing_keys VALUES ('20261203-eawQ4YW1', 'ES256', '{"alg":"ES256","crv":"P-256","kid":"20261203-eawQ4YW1","kty":"EC","use":"sig","x":"kzdCmteXqOT0Ki4QmOPDZqlpEDnQxdDvFS_rU9pvZ58","y":"-r2CX_SZ2SA5_-XXCEHyEL33an6la0-Z6hnzUjr4jxA"}', '\x1872c61457ba6d8da40346958b6be7c83c01ff00b56ba166b91e03269fec161ea35c624ac22f447f69ce79bec4d0036f40bcccb19866c43e11d06b0ce8d1c4e1e51ea9cac4c117f24aad566bcf1697c35663991c960fc8a24383bd03b9c2de67985e0e2649eb6abed795711b5d7ee220d1953add0c7dd68fbdd218e7c75ded797e2a4c12d22073d3fe1b8d7a8039e9b68c6b70288423601e1a65bd683c89d91d6c82fc117cf7', '2026-12-03 18:50:55.860395+00', '2026-12-03 18:50:55.860395+00');


--
-- Data for Name: user_counts; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.user_counts VALUES ('4e8a0a68-54a9-4328-b696-8ebb985d465d', 'admin', 'active', 1, 1);
INSERT INTO public.user_counts VALUES ('4e8a0a68-54a9-4328-b696-8ebb985d465d', 'manager', 'active', 1, 1);
INSERT INTO public.user_counts VALUES ('4e8a0a68-54a9-4328-b696-8ebb985d465d', 'analyst', 'active', 1, 1);
INSERT INTO public.user_counts VALUES ('4e8a0a68-54a9-4328-b696-8ebb985d465d', 'member', 'active', 1, 1);


--
-- Data for Name: user_event_days; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.user_event_days VALUES ('01a23d3e-cd5b-7ed7-bdc9-0cf7630705c5', '4e8a0a68-54a9-4328-b696-8ebb985d465d', '2026-11-20', 3);
INSERT INTO public.user_event_days VALUES ('01a23d3e-cd5b-7ed7-bdc9-0cf7630705c5', '4e8a0a68-54a9-4328-b696-8ebb985d465d', '2026-11-21', 3);
INSERT INTO public.user_event_days VALUES ('01a23d3e-cd5b-7ed7-bdc9-0cf7630705c5', '4e8a0a68-54a9-4328-b696-8ebb985d465d', '2026-11-22', 3);
INSERT INTO public.user_event_days VALUES ('01a23d3e-ce48-77ca-b73f-e3aa86f367cd', '4e8a0a68-54a9-4328-b696-8ebb985d465d', '2026-11-22', 1);


--
-- Data for Name: user_event_stats; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.user_event_stats VALUES ('01a23d3e-cd5b-7ed7-bdc9-0cf7630705c5', '4e8a0a68-54a9-4328-b696-8ebb985d465d', 9, '2026-11-22 16:15:00.123+00');
INSERT INTO public.user_event_stats VALUES ('01a23d3e-ce48-77ca-b73f-e3aa86f367cd', '4e8a0a68-54a9-4328-b696-8ebb985d465d', 1, '2026-11-22 23:59:59.999+00');


--
-- Data for Name: users; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.users VALUES ('01a23d3e-cd5b-7ed7-bdc9-0cf7630705c5', '4e8a0a68-54a9-4328-b696-8ebb985d465d', 'admin@upgrade.test', 'admin@upgrade.test', 'Upgrade Admin', 'admin', 'active', '$argon2id$v=19$m=19456,t=2,p=1$1MZnOiORPbGslTsLEDME5g$/dunraGuaRJCVHf7uHuteLiEyxkK6pJB0dYBgHG/ja4', '2026-12-03 18:50:55.707973+00', '2026-12-03 18:50:55.707973+00');
INSERT INTO public.users VALUES ('01a23d3e-ce48-77ca-b73f-e3aa86f367cd', '4e8a0a68-54a9-4328-b696-8ebb985d465d', 'ada@upgrade.test', 'ada@upgrade.test', 'ada', 'manager', 'active', '$argon2id$v=19$m=19456,t=2,p=1$lrJRyAmSsf7nOPF2+ILr9g$hLt1UogEEMBx3uxcc8Jj0XwdtnXBg5ZzK8+i8PfWfZ8', '2026-12-03 18:50:55.944511+00', '2026-12-03 18:50:55.944511+00');
INSERT INTO public.users VALUES ('01a23d3e-ce7a-7196-8766-2b671de67d14', '4e8a0a68-54a9-4328-b696-8ebb985d465d', 'grace@upgrade.test', 'grace@upgrade.test', 'grace', 'analyst', 'active', '$argon2id$v=19$m=19456,t=2,p=1$+YRtWQXrBGxJZ1B4v9Gvlw$IB5kStYd61Y7QfZUf+OT9eHpjE/eANUlvHdl/X77jbo', '2026-12-03 18:50:55.994104+00', '2026-12-03 18:50:55.994104+00');
INSERT INTO public.users VALUES ('01a23d3e-ce93-7691-aa55-69a62e99ef2e', '4e8a0a68-54a9-4328-b696-8ebb985d465d', 'linus@upgrade.test', 'linus@upgrade.test', 'linus', 'member', 'active', '$argon2id$v=19$m=19456,t=2,p=1$ngw+PrfHtCYrr5Z8LVC5sg$IdOAAc8serzvUTB4xy1kUrniF+clcO0Hy1cPvl65tNE', '2026-12-03 18:50:56.01943+00', '2026-12-03 18:50:56.01943+00');


--
-- Name: auth_events auth_events_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.auth_events
    ADD CONSTRAINT auth_events_pkey PRIMARY KEY (id);


--
-- Name: client_secrets client_secrets_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.client_secrets
    ADD CONSTRAINT client_secrets_pkey PRIMARY KEY (id);


--
-- Name: clients clients_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.clients
    ADD CONSTRAINT clients_pkey PRIMARY KEY (id);


--
-- Name: event_backlog event_backlog_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.event_backlog
    ADD CONSTRAINT event_backlog_pkey PRIMARY KEY (id);


--
-- Name: event_daily_counts event_daily_counts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.event_daily_counts
    ADD CONSTRAINT event_daily_counts_pkey PRIMARY KEY (organization_id, day, event_name, event_category);


--
-- Name: events events_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.events
    ADD CONSTRAINT events_pkey PRIMARY KEY (id);


--
-- Name: organizations organizations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.organizations
    ADD CONSTRAINT organizations_pkey PRIMARY KEY (id);


--
-- Name: refresh_sessions refresh_sessions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.refresh_sessions
    ADD CONSTRAINT refresh_sessions_pkey PRIMARY KEY (id);


--
-- Name: revocation_counter revocation_counter_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.revocation_counter
    ADD CONSTRAINT revocation_counter_pkey PRIMARY KEY (id);


--
-- Name: schema_migrations schema_migrations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);


--
-- Name: service_sessions service_sessions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.service_sessions
    ADD CONSTRAINT service_sessions_pkey PRIMARY KEY (id);


--
-- Name: session_revocations session_revocations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.session_revocations
    ADD CONSTRAINT session_revocations_pkey PRIMARY KEY (seq);


--
-- Name: signing_keys signing_keys_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.signing_keys
    ADD CONSTRAINT signing_keys_pkey PRIMARY KEY (id);


--
-- Name: user_counts user_counts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.user_counts
    ADD CONSTRAINT user_counts_pkey PRIMARY KEY (organization_id, role, status);


--
-- Name: user_event_days user_event_days_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.user_event_days
    ADD CONSTRAINT user_event_days_pkey PRIMARY KEY (user_id, day);


--
-- Name: user_event_stats user_event_stats_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.user_event_stats
    ADD CONSTRAINT user_event_stats_pkey PRIMARY KEY (user_id);


--
-- Name: users users_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_pkey PRIMARY KEY (id);


--
-- Name: auth_events_email_hash; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX auth_events_email_hash ON public.auth_events USING btree (email_hash, occurred_at);


--
-- Name: auth_events_organization; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX auth_events_organization ON public.auth_events USING btree (organization_id, occurred_at);


--
-- Name: auth_events_user; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX auth_events_user ON public.auth_events USING btree (user_id, occurred_at);


--
-- Name: client_secrets_client; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX client_secrets_client ON public.client_secrets USING btree (client_ref);


--
-- Name: clients_client_id; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX clients_client_id ON public.clients USING btree (client_id);


--
-- Name: events_organization_event_id; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX events_organization_event_id ON public.events USING btree (organization_id, event_id);


--
-- Name: events_organization_occurred; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX events_organization_occurred ON public.events USING btree (organization_id, occurred_at, id);


--
-- Name: events_organization_user_occurred; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX events_organization_user_occurred ON public.events USING btree (organization_id, user_id, occurred_at, id);


--
-- Name: refresh_sessions_user; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX refresh_sessions_user ON public.refresh_sessions USING btree (user_id);


--
-- Name: service_sessions_client_expires; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX service_sessions_client_expires ON public.service_sessions USING btree (client_ref, expires_at);


--
-- Name: service_sessions_secret_created; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX service_sessions_secret_created ON public.service_sessions USING btree (secret_id, created_at);


--
-- Name: session_revocations_revoked_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX session_revocations_revoked_at ON public.session_revocations USING btree (revoked_at);


--
-- Name: users_email_key; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX users_email_key ON public.users USING btree (email_key);


--
-- Name: users_organization; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX users_organization ON public.users USING btree (organization_id);


--
-- Name: users_organization_created; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX users_organization_created ON public.users USING btree (organization_id, created_at, id);


--
-- Name: users_organization_role_created; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX users_organization_role_created ON public.users USING btree (organization_id, role, created_at, id);


--
-- Name: users_organization_status_created; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX users_organization_status_created ON public.users USING btree (organization_id, status, created_at, id);


--
-- Name: users_organization_status_role_created; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX users_organization_status_role_created ON public.users USING btree (organization_id, status, role, created_at, id);


--
-- Name: users users_count_delete; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER users_count_delete AFTER DELETE ON public.users REFERENCING OLD TABLE AS old_users FOR EACH STATEMENT EXECUTE FUNCTION public.user_counts_add();


--
-- Name: users users_count_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER users_count_insert AFTER INSERT ON public.users REFERENCING NEW TABLE AS new_users FOR EACH STATEMENT EXECUTE FUNCTION public.user_counts_add();


--
-- Name: users users_count_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER users_count_update AFTER UPDATE ON public.users REFERENCING OLD TABLE AS old_users NEW TABLE AS new_users FOR EACH STATEMENT EXECUTE FUNCTION public.user_counts_add();


--
-- Name: client_secrets client_secrets_client_ref_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.client_secrets
    ADD CONSTRAINT client_secrets_client_ref_fkey FOREIGN KEY (client_ref) REFERENCES public.clients(id) ON DELETE CASCADE;


--
-- Name: clients clients_organization_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.clients
    ADD CONSTRAINT clients_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations(id);


--
-- Name: refresh_sessions refresh_sessions_organization_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.refresh_sessions
    ADD CONSTRAINT refresh_sessions_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations(id);


--
-- Name: refresh_sessions refresh_sessions_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.refresh_sessions
    ADD CONSTRAINT refresh_sessions_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id) ON DELETE CASCADE;


--
-- Name: service_sessions service_sessions_client_ref_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.service_sessions
    ADD CONSTRAINT service_sessions_client_ref_fkey FOREIGN KEY (client_ref) REFERENCES public.clients(id) ON DELETE CASCADE;


--
-- Name: users users_organization_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES public.organizations(id);


--
-- PostgreSQL database dump complete
--


