--
-- PostgreSQL database dump
--


-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

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
-- Name: csbot_v01; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA csbot_v01;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: actions; Type: TABLE; Schema: csbot_v01; Owner: -
--

CREATE TABLE csbot_v01.actions (
    id bigint NOT NULL,
    kind text NOT NULL,
    event_id text NOT NULL,
    action text NOT NULL,
    actor_id text NOT NULL,
    actor_name text,
    surface text NOT NULL,
    channel_id text,
    status text NOT NULL,
    execution_link text,
    execution_id text,
    error text,
    error_class text,
    duplicate_of bigint,
    request_id text,
    created_at timestamp with time zone NOT NULL,
    finished_at timestamp with time zone
);


--
-- Name: actions_id_seq; Type: SEQUENCE; Schema: csbot_v01; Owner: -
--

CREATE SEQUENCE csbot_v01.actions_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: actions_id_seq; Type: SEQUENCE OWNED BY; Schema: csbot_v01; Owner: -
--

ALTER SEQUENCE csbot_v01.actions_id_seq OWNED BY csbot_v01.actions.id;


--
-- Name: alerts; Type: TABLE; Schema: csbot_v01; Owner: -
--

CREATE TABLE csbot_v01.alerts (
    id bigint NOT NULL,
    kind text NOT NULL,
    event_id text NOT NULL,
    execution_index integer NOT NULL,
    channel_id text NOT NULL,
    ts text NOT NULL,
    thread_ts text,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: alerts_id_seq; Type: SEQUENCE; Schema: csbot_v01; Owner: -
--

CREATE SEQUENCE csbot_v01.alerts_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: alerts_id_seq; Type: SEQUENCE OWNED BY; Schema: csbot_v01; Owner: -
--

ALTER SEQUENCE csbot_v01.alerts_id_seq OWNED BY csbot_v01.alerts.id;


--
-- Name: claims; Type: TABLE; Schema: csbot_v01; Owner: -
--

CREATE TABLE csbot_v01.claims (
    key text NOT NULL,
    holder text NOT NULL,
    claimed_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    data json NOT NULL
);


--
-- Name: cursors; Type: TABLE; Schema: csbot_v01; Owner: -
--

CREATE TABLE csbot_v01.cursors (
    name text NOT NULL,
    value text NOT NULL,
    updated_at timestamp with time zone NOT NULL
);


--
-- Name: followups; Type: TABLE; Schema: csbot_v01; Owner: -
--

CREATE TABLE csbot_v01.followups (
    id bigint NOT NULL,
    execution_id text NOT NULL,
    kind text NOT NULL,
    event_id text NOT NULL,
    action_id bigint,
    channel_id text NOT NULL,
    summary_ts text NOT NULL,
    alert_channel_id text,
    alert_ts text,
    actor_id text,
    status text NOT NULL,
    next_poll_at timestamp with time zone NOT NULL,
    deadline_at timestamp with time zone NOT NULL,
    "interval" double precision NOT NULL,
    created_at timestamp with time zone NOT NULL,
    finished_at timestamp with time zone
);


--
-- Name: followups_id_seq; Type: SEQUENCE; Schema: csbot_v01; Owner: -
--

CREATE SEQUENCE csbot_v01.followups_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: followups_id_seq; Type: SEQUENCE OWNED BY; Schema: csbot_v01; Owner: -
--

ALTER SEQUENCE csbot_v01.followups_id_seq OWNED BY csbot_v01.followups.id;


--
-- Name: leases; Type: TABLE; Schema: csbot_v01; Owner: -
--

CREATE TABLE csbot_v01.leases (
    name text NOT NULL,
    holder text NOT NULL,
    acquired_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone NOT NULL
);


--
-- Name: schema_version; Type: TABLE; Schema: csbot_v01; Owner: -
--

CREATE TABLE csbot_v01.schema_version (
    id integer NOT NULL,
    version integer NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    CONSTRAINT schema_version_single_row CHECK ((id = 1))
);


--
-- Name: actions id; Type: DEFAULT; Schema: csbot_v01; Owner: -
--

ALTER TABLE ONLY csbot_v01.actions ALTER COLUMN id SET DEFAULT nextval('csbot_v01.actions_id_seq'::regclass);


--
-- Name: alerts id; Type: DEFAULT; Schema: csbot_v01; Owner: -
--

ALTER TABLE ONLY csbot_v01.alerts ALTER COLUMN id SET DEFAULT nextval('csbot_v01.alerts_id_seq'::regclass);


--
-- Name: followups id; Type: DEFAULT; Schema: csbot_v01; Owner: -
--

ALTER TABLE ONLY csbot_v01.followups ALTER COLUMN id SET DEFAULT nextval('csbot_v01.followups_id_seq'::regclass);


--
-- Data for Name: actions; Type: TABLE DATA; Schema: csbot_v01; Owner: -
--

INSERT INTO csbot_v01.actions VALUES (1, 'git', '7f3a1b2c-0000-4000-8000-000000000000', 'rerun', 'U0ALICE', 'alice', 'button', 'C0ALERTS', 'started', NULL, 'e1', NULL, NULL, NULL, 'req0', '2026-11-20 09:30:00+00', '2026-11-20 09:30:02+00');
INSERT INTO csbot_v01.actions VALUES (2, 'git', '7f3a1b2c-0000-4000-8000-000000000001', 'resume', 'U0ALICE', 'alice', 'button', 'C0ALERTS', 'failed', NULL, NULL, NULL, NULL, NULL, 'req1', '2026-11-20 09:31:00+00', '2026-11-20 09:31:02+00');
INSERT INTO csbot_v01.actions VALUES (3, 'git', '7f3a1b2c-0000-4000-8000-000000000002', 'rerun', 'U0ALICE', 'alice', 'button', 'C0ALERTS', 'denied', NULL, NULL, NULL, NULL, NULL, 'req2', '2026-11-20 09:32:00+00', '2026-11-20 09:32:02+00');
INSERT INTO csbot_v01.actions VALUES (4, 'git', '7f3a1b2c-0000-4000-8000-000000000003', 'rerun', 'U0ALICE', 'alice', 'button', 'C0ALERTS', 'pending', NULL, NULL, NULL, NULL, NULL, 'req3', '2026-11-20 09:33:00+00', NULL);
INSERT INTO csbot_v01.actions VALUES (5, 'git', '7f3a1b2c-0000-4000-8000-000000000004', 'rerun', 'U0ALICE', 'alice', 'button', 'C0ALERTS', 'duplicate', NULL, NULL, NULL, NULL, NULL, 'req4', '2026-11-20 09:34:00+00', '2026-11-20 09:34:02+00');


--
-- Data for Name: alerts; Type: TABLE DATA; Schema: csbot_v01; Owner: -
--

INSERT INTO csbot_v01.alerts VALUES (1, 'git', '7f3a1b2c-0000-4000-8000-000000000000', 3, 'C0ALERTS', '1700000000.000100', NULL, '2026-11-20 09:30:00+00');


--
-- Data for Name: claims; Type: TABLE DATA; Schema: csbot_v01; Owner: -
--

INSERT INTO csbot_v01.claims VALUES ('action:git:7f3a1b2c-0000-4000-8000-000000000003:rerun', 'req3', '2026-12-01 20:38:49.505355+00', '2026-12-01 20:40:49.505355+00', '{"actor_id": "U0ALICE"}');


--
-- Data for Name: cursors; Type: TABLE DATA; Schema: csbot_v01; Owner: -
--

INSERT INTO csbot_v01.cursors VALUES ('watcher:git', '{}', '2026-12-01 20:38:49.514296+00');


--
-- Data for Name: followups; Type: TABLE DATA; Schema: csbot_v01; Owner: -
--

INSERT INTO csbot_v01.followups VALUES (1, 'e1', 'git', '7f3a1b2c-0000-4000-8000-000000000000', 1, 'C0ALERTS', '1700000000.000200', NULL, NULL, NULL, 'RUNNING', '2026-11-20 09:30:00+00', '2026-11-20 15:30:00+00', 5, '2026-11-20 09:30:00+00', NULL);


--
-- Data for Name: leases; Type: TABLE DATA; Schema: csbot_v01; Owner: -
--

INSERT INTO csbot_v01.leases VALUES ('watcher', 'oldhost:1', '2026-12-01 20:38:49.510829+00', '2026-12-01 20:40:19.510829+00');


--
-- Data for Name: schema_version; Type: TABLE DATA; Schema: csbot_v01; Owner: -
--

INSERT INTO csbot_v01.schema_version VALUES (1, 1, '2026-12-01 20:38:49.434383+00');


--
-- Name: actions_id_seq; Type: SEQUENCE SET; Schema: csbot_v01; Owner: -
--

SELECT pg_catalog.setval('csbot_v01.actions_id_seq', 5, true);


--
-- Name: alerts_id_seq; Type: SEQUENCE SET; Schema: csbot_v01; Owner: -
--

SELECT pg_catalog.setval('csbot_v01.alerts_id_seq', 1, true);


--
-- Name: followups_id_seq; Type: SEQUENCE SET; Schema: csbot_v01; Owner: -
--

SELECT pg_catalog.setval('csbot_v01.followups_id_seq', 1, true);


--
-- Name: actions actions_pkey; Type: CONSTRAINT; Schema: csbot_v01; Owner: -
--

ALTER TABLE ONLY csbot_v01.actions
    ADD CONSTRAINT actions_pkey PRIMARY KEY (id);


--
-- Name: alerts alerts_pkey; Type: CONSTRAINT; Schema: csbot_v01; Owner: -
--

ALTER TABLE ONLY csbot_v01.alerts
    ADD CONSTRAINT alerts_pkey PRIMARY KEY (id);


--
-- Name: claims claims_pkey; Type: CONSTRAINT; Schema: csbot_v01; Owner: -
--

ALTER TABLE ONLY csbot_v01.claims
    ADD CONSTRAINT claims_pkey PRIMARY KEY (key);


--
-- Name: cursors cursors_pkey; Type: CONSTRAINT; Schema: csbot_v01; Owner: -
--

ALTER TABLE ONLY csbot_v01.cursors
    ADD CONSTRAINT cursors_pkey PRIMARY KEY (name);


--
-- Name: followups followups_pkey; Type: CONSTRAINT; Schema: csbot_v01; Owner: -
--

ALTER TABLE ONLY csbot_v01.followups
    ADD CONSTRAINT followups_pkey PRIMARY KEY (id);


--
-- Name: leases leases_pkey; Type: CONSTRAINT; Schema: csbot_v01; Owner: -
--

ALTER TABLE ONLY csbot_v01.leases
    ADD CONSTRAINT leases_pkey PRIMARY KEY (name);


--
-- Name: schema_version schema_version_pkey; Type: CONSTRAINT; Schema: csbot_v01; Owner: -
--

ALTER TABLE ONLY csbot_v01.schema_version
    ADD CONSTRAINT schema_version_pkey PRIMARY KEY (id);


--
-- Name: alerts uq_alerts_event_execution; Type: CONSTRAINT; Schema: csbot_v01; Owner: -
--

ALTER TABLE ONLY csbot_v01.alerts
    ADD CONSTRAINT uq_alerts_event_execution UNIQUE (kind, event_id, execution_index);


--
-- Name: ix_actions_actor_id; Type: INDEX; Schema: csbot_v01; Owner: -
--

CREATE INDEX ix_actions_actor_id ON csbot_v01.actions USING btree (actor_id, created_at);


--
-- Name: ix_actions_created_at; Type: INDEX; Schema: csbot_v01; Owner: -
--

CREATE INDEX ix_actions_created_at ON csbot_v01.actions USING btree (created_at);


--
-- Name: ix_actions_event_id; Type: INDEX; Schema: csbot_v01; Owner: -
--

CREATE INDEX ix_actions_event_id ON csbot_v01.actions USING btree (event_id, created_at);


--
-- Name: ix_alerts_message; Type: INDEX; Schema: csbot_v01; Owner: -
--

CREATE INDEX ix_alerts_message ON csbot_v01.alerts USING btree (channel_id, ts);


--
-- Name: ix_alerts_thread; Type: INDEX; Schema: csbot_v01; Owner: -
--

CREATE INDEX ix_alerts_thread ON csbot_v01.alerts USING btree (channel_id, thread_ts);


--
-- Name: ix_followups_due; Type: INDEX; Schema: csbot_v01; Owner: -
--

CREATE INDEX ix_followups_due ON csbot_v01.followups USING btree (finished_at, next_poll_at);


--
-- Name: ix_followups_execution; Type: INDEX; Schema: csbot_v01; Owner: -
--

CREATE INDEX ix_followups_execution ON csbot_v01.followups USING btree (execution_id);


--
-- PostgreSQL database dump complete
--


