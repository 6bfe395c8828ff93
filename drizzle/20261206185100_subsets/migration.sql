CREATE TABLE "subset_log" (
	"token_id" uuid,
	"dataset_id" uuid,
	"seq" bigint,
	"txid" xid8 DEFAULT pg_current_xact_id(),
	"entity_id" uuid NOT NULL,
	"kind" text NOT NULL,
	"version_seq" bigint,
	CONSTRAINT "subset_log_pk" PRIMARY KEY("token_id","dataset_id","txid","seq")
);
--> statement-breakpoint
DROP INDEX "entity_versions_pull_idx";--> statement-breakpoint
ALTER TABLE "entity_versions" ADD COLUMN "dataset_id" uuid;--> statement-breakpoint
-- Hand-written: versions already stored take their entity's dataset, then the column is required.
UPDATE "entity_versions" AS v SET "dataset_id" = e."dataset_id" FROM "entities" AS e WHERE e."id" = v."entity_id";--> statement-breakpoint
ALTER TABLE "entity_versions" ALTER COLUMN "dataset_id" SET NOT NULL;--> statement-breakpoint
ALTER TABLE "api_tokens" ADD COLUMN "subset" jsonb;--> statement-breakpoint
ALTER TABLE "api_tokens" ADD COLUMN "subset_changed_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "entity_versions_dataset_pull_idx" ON "entity_versions" ("dataset_id","txid","seq");--> statement-breakpoint
CREATE INDEX "subset_log_entity_idx" ON "subset_log" ("token_id","entity_id");--> statement-breakpoint
ALTER TABLE "entity_versions" ADD CONSTRAINT "entity_versions_dataset_id_datasets_id_fkey" FOREIGN KEY ("dataset_id") REFERENCES "datasets"("id");