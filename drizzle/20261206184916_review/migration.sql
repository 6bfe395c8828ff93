CREATE TABLE "device_pulls" (
	"dataset_name" text,
	"device_id" text,
	"pulled_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "device_pulls_pkey" PRIMARY KEY("dataset_name","device_id")
);
--> statement-breakpoint
CREATE TABLE "resolutions" (
	"id" bigserial PRIMARY KEY,
	"entity_id" uuid NOT NULL,
	"dataset_id" uuid NOT NULL,
	"kind" text NOT NULL,
	"at_version" integer NOT NULL,
	"version_written" integer,
	"conflict" text,
	"conflicting_properties" text[] DEFAULT '{}'::text[] NOT NULL,
	"conflicts_resolved" integer DEFAULT 0 NOT NULL,
	"token_id" uuid,
	"by_name" text NOT NULL,
	"note" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "entity_versions" ADD COLUMN "resolution_id" bigint;--> statement-breakpoint
CREATE INDEX "entity_versions_activity_idx" ON "entity_versions" ("created_at") WHERE "conflict" is not null or "source" in ('RELEASED', 'FORCED');--> statement-breakpoint
CREATE INDEX "changes_dataset_device_idx" ON "changes" ("dataset_name","device_id","received_at");--> statement-breakpoint
CREATE INDEX "changes_rejected_idx" ON "changes" ("dataset_name","receipt_id") WHERE "outcome" = 'REJECTED';--> statement-breakpoint
CREATE INDEX "changes_rejected_device_idx" ON "changes" ("dataset_name","device_id","receipt_id") WHERE "outcome" = 'REJECTED';--> statement-breakpoint
CREATE INDEX "held_changes_dataset_device_idx" ON "held_changes" ("dataset_name","device_id");--> statement-breakpoint
CREATE INDEX "resolutions_entity_idx" ON "resolutions" ("entity_id","id");--> statement-breakpoint
CREATE INDEX "resolutions_dataset_created_idx" ON "resolutions" ("dataset_id","created_at");--> statement-breakpoint
ALTER TABLE "resolutions" ADD CONSTRAINT "resolutions_entity_id_entities_id_fkey" FOREIGN KEY ("entity_id") REFERENCES "entities"("id");--> statement-breakpoint
ALTER TABLE "resolutions" ADD CONSTRAINT "resolutions_dataset_id_datasets_id_fkey" FOREIGN KEY ("dataset_id") REFERENCES "datasets"("id");