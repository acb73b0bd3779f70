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
-- Name: csbot_v4; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA csbot_v4;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: actions; Type: TABLE; Schema: csbot_v4; Owner: -
--

CREATE TABLE csbot_v4.actions (
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
    finished_at timestamp with time zone,
    owner text,
    before_execution_index integer,
    before_execution_link text,
    settle_by timestamp with time zone,
    next_check_at timestamp with time zone,
    summary_channel text,
    summary_ts text,
    alert_channel text,
    alert_ts text,
    alert_thread_ts text,
    project text,
    pipeline text
);


--
-- Name: actions_id_seq; Type: SEQUENCE; Schema: csbot_v4; Owner: -
--

CREATE SEQUENCE csbot_v4.actions_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: actions_id_seq; Type: SEQUENCE OWNED BY; Schema: csbot_v4; Owner: -
--

ALTER SEQUENCE csbot_v4.actions_id_seq OWNED BY csbot_v4.actions.id;


--
-- Name: alerts; Type: TABLE; Schema: csbot_v4; Owner: -
--

CREATE TABLE csbot_v4.alerts (
    id bigint NOT NULL,
    kind text NOT NULL,
    event_id text NOT NULL,
    execution_index integer NOT NULL,
    channel_id text NOT NULL,
    ts text NOT NULL,
    thread_ts text,
    created_at timestamp with time zone NOT NULL,
    series text,
    repeats integer DEFAULT 0 NOT NULL,
    resolved_at timestamp with time zone,
    mention text,
    author text
);


--
-- Name: alerts_id_seq; Type: SEQUENCE; Schema: csbot_v4; Owner: -
--

CREATE SEQUENCE csbot_v4.alerts_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: alerts_id_seq; Type: SEQUENCE OWNED BY; Schema: csbot_v4; Owner: -
--

ALTER SEQUENCE csbot_v4.alerts_id_seq OWNED BY csbot_v4.alerts.id;


--
-- Name: claims; Type: TABLE; Schema: csbot_v4; Owner: -
--

CREATE TABLE csbot_v4.claims (
    key text NOT NULL,
    holder text NOT NULL,
    claimed_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    data json NOT NULL
);


--
-- Name: cursors; Type: TABLE; Schema: csbot_v4; Owner: -
--

CREATE TABLE csbot_v4.cursors (
    name text NOT NULL,
    value text NOT NULL,
    updated_at timestamp with time zone NOT NULL
);


--
-- Name: followups; Type: TABLE; Schema: csbot_v4; Owner: -
--

CREATE TABLE csbot_v4.followups (
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
-- Name: followups_id_seq; Type: SEQUENCE; Schema: csbot_v4; Owner: -
--

CREATE SEQUENCE csbot_v4.followups_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: followups_id_seq; Type: SEQUENCE OWNED BY; Schema: csbot_v4; Owner: -
--

ALTER SEQUENCE csbot_v4.followups_id_seq OWNED BY csbot_v4.followups.id;


--
-- Name: leases; Type: TABLE; Schema: csbot_v4; Owner: -
--

CREATE TABLE csbot_v4.leases (
    name text NOT NULL,
    holder text NOT NULL,
    acquired_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone NOT NULL
);


--
-- Name: mutes; Type: TABLE; Schema: csbot_v4; Owner: -
--

CREATE TABLE csbot_v4.mutes (
    id bigint NOT NULL,
    scope text NOT NULL,
    kind text NOT NULL,
    project text,
    pipeline text,
    repo text,
    branch text,
    until timestamp with time zone NOT NULL,
    until_pass boolean DEFAULT false NOT NULL,
    event_id text,
    muted_by text NOT NULL,
    channel_id text,
    created_at timestamp with time zone NOT NULL,
    ended_at timestamp with time zone,
    ended_by text,
    suppressed integer DEFAULT 0 NOT NULL
);


--
-- Name: mutes_id_seq; Type: SEQUENCE; Schema: csbot_v4; Owner: -
--

CREATE SEQUENCE csbot_v4.mutes_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: mutes_id_seq; Type: SEQUENCE OWNED BY; Schema: csbot_v4; Owner: -
--

ALTER SEQUENCE csbot_v4.mutes_id_seq OWNED BY csbot_v4.mutes.id;


--
-- Name: replicas; Type: TABLE; Schema: csbot_v4; Owner: -
--

CREATE TABLE csbot_v4.replicas (
    holder text NOT NULL,
    started_at timestamp with time zone NOT NULL,
    heartbeat_at timestamp with time zone NOT NULL
);


--
-- Name: schema_version; Type: TABLE; Schema: csbot_v4; Owner: -
--

CREATE TABLE csbot_v4.schema_version (
    id integer NOT NULL,
    version integer NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    CONSTRAINT schema_version_single_row CHECK ((id = 1))
);


--
-- Name: undelivered_alerts; Type: TABLE; Schema: csbot_v4; Owner: -
--

CREATE TABLE csbot_v4.undelivered_alerts (
    key text NOT NULL,
    kind text NOT NULL,
    event_id text NOT NULL,
    execution_index integer,
    channel_id text NOT NULL,
    thread_ts text,
    mention text,
    reason text NOT NULL,
    tries integer NOT NULL,
    first_at timestamp with time zone NOT NULL,
    next_try_at timestamp with time zone NOT NULL,
    give_up_at timestamp with time zone NOT NULL
);


--
-- Name: actions id; Type: DEFAULT; Schema: csbot_v4; Owner: -
--

ALTER TABLE ONLY csbot_v4.actions ALTER COLUMN id SET DEFAULT nextval('csbot_v4.actions_id_seq'::regclass);


--
-- Name: alerts id; Type: DEFAULT; Schema: csbot_v4; Owner: -
--

ALTER TABLE ONLY csbot_v4.alerts ALTER COLUMN id SET DEFAULT nextval('csbot_v4.alerts_id_seq'::regclass);


--
-- Name: followups id; Type: DEFAULT; Schema: csbot_v4; Owner: -
--

ALTER TABLE ONLY csbot_v4.followups ALTER COLUMN id SET DEFAULT nextval('csbot_v4.followups_id_seq'::regclass);


--
-- Name: mutes id; Type: DEFAULT; Schema: csbot_v4; Owner: -
--

ALTER TABLE ONLY csbot_v4.mutes ALTER COLUMN id SET DEFAULT nextval('csbot_v4.mutes_id_seq'::regclass);


--
-- Data for Name: actions; Type: TABLE DATA; Schema: csbot_v4; Owner: -
--

INSERT INTO csbot_v4.actions VALUES (1, 'git', '7f3a1b2c-0000-4000-8000-000000000004', 'rerun', 'U0ALICE', 'alice', 'button', 'C0ALERTS', 'started', NULL, 'e4', NULL, NULL, NULL, NULL, '2026-12-01 09:00:00+00', '2026-12-01 09:00:00+00', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'Payments', 'payments-ci');


--
-- Data for Name: alerts; Type: TABLE DATA; Schema: csbot_v4; Owner: -
--

INSERT INTO csbot_v4.alerts VALUES (1, 'git', '7f3a1b2c-0000-4000-8000-000000000004', 4, 'C0ALERTS', '1764579600.000100', NULL, '2026-12-01 09:00:00+00', 'git|Payments|payments-ci|payments-api|main', 0, NULL, NULL, NULL);


--
-- Data for Name: claims; Type: TABLE DATA; Schema: csbot_v4; Owner: -
--



--
-- Data for Name: cursors; Type: TABLE DATA; Schema: csbot_v4; Owner: -
--



--
-- Data for Name: followups; Type: TABLE DATA; Schema: csbot_v4; Owner: -
--



--
-- Data for Name: leases; Type: TABLE DATA; Schema: csbot_v4; Owner: -
--



--
-- Data for Name: mutes; Type: TABLE DATA; Schema: csbot_v4; Owner: -
--

INSERT INTO csbot_v4.mutes VALUES (1, 'pipeline', 'git', 'Payments', 'payments-nightly', NULL, NULL, '2036-11-28 09:00:00+00', false, 'ev-m', 'U0ALICE', 'C0ALERTS', '2026-12-01 09:00:00+00', NULL, NULL, 0);


--
-- Data for Name: replicas; Type: TABLE DATA; Schema: csbot_v4; Owner: -
--



--
-- Data for Name: schema_version; Type: TABLE DATA; Schema: csbot_v4; Owner: -
--

INSERT INTO csbot_v4.schema_version VALUES (1, 4, '2026-12-01 09:00:00+00');


--
-- Data for Name: undelivered_alerts; Type: TABLE DATA; Schema: csbot_v4; Owner: -
--



--
-- Name: actions_id_seq; Type: SEQUENCE SET; Schema: csbot_v4; Owner: -
--

SELECT pg_catalog.setval('csbot_v4.actions_id_seq', 1, true);


--
-- Name: alerts_id_seq; Type: SEQUENCE SET; Schema: csbot_v4; Owner: -
--

SELECT pg_catalog.setval('csbot_v4.alerts_id_seq', 1, true);


--
-- Name: followups_id_seq; Type: SEQUENCE SET; Schema: csbot_v4; Owner: -
--

SELECT pg_catalog.setval('csbot_v4.followups_id_seq', 1, false);


--
-- Name: mutes_id_seq; Type: SEQUENCE SET; Schema: csbot_v4; Owner: -
--

SELECT pg_catalog.setval('csbot_v4.mutes_id_seq', 1, true);


--
-- Name: actions actions_pkey; Type: CONSTRAINT; Schema: csbot_v4; Owner: -
--

ALTER TABLE ONLY csbot_v4.actions
    ADD CONSTRAINT actions_pkey PRIMARY KEY (id);


--
-- Name: alerts alerts_pkey; Type: CONSTRAINT; Schema: csbot_v4; Owner: -
--

ALTER TABLE ONLY csbot_v4.alerts
    ADD CONSTRAINT alerts_pkey PRIMARY KEY (id);


--
-- Name: claims claims_pkey; Type: CONSTRAINT; Schema: csbot_v4; Owner: -
--

ALTER TABLE ONLY csbot_v4.claims
    ADD CONSTRAINT claims_pkey PRIMARY KEY (key);


--
-- Name: cursors cursors_pkey; Type: CONSTRAINT; Schema: csbot_v4; Owner: -
--

ALTER TABLE ONLY csbot_v4.cursors
    ADD CONSTRAINT cursors_pkey PRIMARY KEY (name);


--
-- Name: followups followups_pkey; Type: CONSTRAINT; Schema: csbot_v4; Owner: -
--

ALTER TABLE ONLY csbot_v4.followups
    ADD CONSTRAINT followups_pkey PRIMARY KEY (id);


--
-- Name: leases leases_pkey; Type: CONSTRAINT; Schema: csbot_v4; Owner: -
--

ALTER TABLE ONLY csbot_v4.leases
    ADD CONSTRAINT leases_pkey PRIMARY KEY (name);


--
-- Name: mutes mutes_pkey; Type: CONSTRAINT; Schema: csbot_v4; Owner: -
--

ALTER TABLE ONLY csbot_v4.mutes
    ADD CONSTRAINT mutes_pkey PRIMARY KEY (id);


--
-- Name: replicas replicas_pkey; Type: CONSTRAINT; Schema: csbot_v4; Owner: -
--

ALTER TABLE ONLY csbot_v4.replicas
    ADD CONSTRAINT replicas_pkey PRIMARY KEY (holder);


--
-- Name: schema_version schema_version_pkey; Type: CONSTRAINT; Schema: csbot_v4; Owner: -
--

ALTER TABLE ONLY csbot_v4.schema_version
    ADD CONSTRAINT schema_version_pkey PRIMARY KEY (id);


--
-- Name: undelivered_alerts undelivered_alerts_pkey; Type: CONSTRAINT; Schema: csbot_v4; Owner: -
--

ALTER TABLE ONLY csbot_v4.undelivered_alerts
    ADD CONSTRAINT undelivered_alerts_pkey PRIMARY KEY (key);


--
-- Name: alerts uq_alerts_event_execution; Type: CONSTRAINT; Schema: csbot_v4; Owner: -
--

ALTER TABLE ONLY csbot_v4.alerts
    ADD CONSTRAINT uq_alerts_event_execution UNIQUE (kind, event_id, execution_index);


--
-- Name: ix_actions_actor_id; Type: INDEX; Schema: csbot_v4; Owner: -
--

CREATE INDEX ix_actions_actor_id ON csbot_v4.actions USING btree (actor_id, created_at);


--
-- Name: ix_actions_alert; Type: INDEX; Schema: csbot_v4; Owner: -
--

CREATE INDEX ix_actions_alert ON csbot_v4.actions USING btree (alert_channel, alert_ts);


--
-- Name: ix_actions_created_at; Type: INDEX; Schema: csbot_v4; Owner: -
--

CREATE INDEX ix_actions_created_at ON csbot_v4.actions USING btree (created_at);


--
-- Name: ix_actions_event_id; Type: INDEX; Schema: csbot_v4; Owner: -
--

CREATE INDEX ix_actions_event_id ON csbot_v4.actions USING btree (event_id, created_at);


--
-- Name: ix_actions_status; Type: INDEX; Schema: csbot_v4; Owner: -
--

CREATE INDEX ix_actions_status ON csbot_v4.actions USING btree (status);


--
-- Name: ix_alerts_message; Type: INDEX; Schema: csbot_v4; Owner: -
--

CREATE INDEX ix_alerts_message ON csbot_v4.alerts USING btree (channel_id, ts);


--
-- Name: ix_alerts_series; Type: INDEX; Schema: csbot_v4; Owner: -
--

CREATE INDEX ix_alerts_series ON csbot_v4.alerts USING btree (series, created_at);


--
-- Name: ix_alerts_thread; Type: INDEX; Schema: csbot_v4; Owner: -
--

CREATE INDEX ix_alerts_thread ON csbot_v4.alerts USING btree (channel_id, thread_ts);


--
-- Name: ix_followups_due; Type: INDEX; Schema: csbot_v4; Owner: -
--

CREATE INDEX ix_followups_due ON csbot_v4.followups USING btree (finished_at, next_poll_at);


--
-- Name: ix_followups_execution; Type: INDEX; Schema: csbot_v4; Owner: -
--

CREATE INDEX ix_followups_execution ON csbot_v4.followups USING btree (execution_id);


--
-- Name: ix_mutes_open; Type: INDEX; Schema: csbot_v4; Owner: -
--

CREATE INDEX ix_mutes_open ON csbot_v4.mutes USING btree (ended_at);


--
-- Name: ix_undelivered_due; Type: INDEX; Schema: csbot_v4; Owner: -
--

CREATE INDEX ix_undelivered_due ON csbot_v4.undelivered_alerts USING btree (next_try_at);


--
-- PostgreSQL database dump complete
--


