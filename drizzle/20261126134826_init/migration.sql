CREATE TABLE "datasets" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	"name" text NOT NULL UNIQUE,
	"properties" text[] DEFAULT '{}'::text[] NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "entities" (
	"id" uuid PRIMARY KEY,
	"dataset_id" uuid NOT NULL,
	"label" text NOT NULL,
	"data" jsonb NOT NULL,
	"version" integer NOT NULL,
	"conflict" text,
	"deleted" boolean DEFAULT false NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "entity_versions" (
	"seq" bigserial PRIMARY KEY,
	"entity_id" uuid NOT NULL,
	"version" integer NOT NULL,
	"applied_on" integer,
	"base_version" integer,
	"action" text NOT NULL,
	"label" text NOT NULL,
	"data" jsonb NOT NULL,
	"changed" jsonb NOT NULL,
	"operations" jsonb DEFAULT '[]' NOT NULL,
	"deleted" boolean DEFAULT false NOT NULL,
	"conflict" text,
	"conflicting_properties" text[] DEFAULT '{}'::text[] NOT NULL,
	"resolved" boolean DEFAULT false NOT NULL,
	"source" text NOT NULL,
	"branch_id" uuid,
	"trunk_version" integer,
	"server_diff" jsonb DEFAULT '[]' NOT NULL,
	"base_diff" jsonb,
	"author_view_unavailable" text,
	"change_id" text NOT NULL,
	"device_id" text,
	"txid" xid8 DEFAULT pg_current_xact_id() NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "entity_versions_entity_version_uq" UNIQUE("entity_id","version")
);
--> statement-breakpoint
CREATE TABLE "changes" (
	"receipt_id" bigserial PRIMARY KEY,
	"change_id" text NOT NULL,
	"original" boolean DEFAULT true NOT NULL,
	"device_id" text,
	"dataset_name" text,
	"entity_id" uuid,
	"action" text,
	"payload" jsonb NOT NULL,
	"outcome" text NOT NULL,
	"error_code" text,
	"error_message" text,
	"version" integer,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL,
	"processed_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "held_changes" (
	"change_id" text PRIMARY KEY,
	"entity_id" uuid NOT NULL,
	"dataset_name" text NOT NULL,
	"device_id" text,
	"branch_id" uuid NOT NULL,
	"trunk_version" integer,
	"base_version" integer NOT NULL,
	"waits_for" integer NOT NULL,
	"change" jsonb NOT NULL,
	"held_since" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "local_ids" (
	"device_id" text,
	"local_id" text,
	"entity_id" uuid NOT NULL UNIQUE,
	"dataset_name" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "local_ids_pkey" PRIMARY KEY("device_id","local_id")
);
--> statement-breakpoint
CREATE TABLE "event_payloads" (
	"id" bigserial PRIMARY KEY,
	"payload" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "entities_dataset_idx" ON "entities" ("dataset_id","id");--> statement-breakpoint
CREATE INDEX "entities_conflict_idx" ON "entities" ("dataset_id") WHERE "conflict" is not null;--> statement-breakpoint
CREATE INDEX "entity_versions_pull_idx" ON "entity_versions" ("txid","seq");--> statement-breakpoint
CREATE INDEX "entity_versions_branch_idx" ON "entity_versions" ("branch_id","base_version");--> statement-breakpoint
CREATE UNIQUE INDEX "changes_change_id_uq" ON "changes" ("change_id") WHERE "original";--> statement-breakpoint
CREATE INDEX "changes_entity_idx" ON "changes" ("entity_id");--> statement-breakpoint
CREATE UNIQUE INDEX "held_changes_branch_position_uq" ON "held_changes" ("branch_id","base_version");--> statement-breakpoint
CREATE INDEX "held_changes_held_since_idx" ON "held_changes" ("held_since");--> statement-breakpoint
CREATE INDEX "held_changes_entity_idx" ON "held_changes" ("entity_id");--> statement-breakpoint
ALTER TABLE "entities" ADD CONSTRAINT "entities_dataset_id_datasets_id_fkey" FOREIGN KEY ("dataset_id") REFERENCES "datasets"("id");--> statement-breakpoint
ALTER TABLE "entity_versions" ADD CONSTRAINT "entity_versions_entity_id_entities_id_fkey" FOREIGN KEY ("entity_id") REFERENCES "entities"("id");