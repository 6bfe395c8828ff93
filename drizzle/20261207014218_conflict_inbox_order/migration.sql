ALTER TABLE "entities" ADD COLUMN "last_conflict_at" timestamp with time zone;--> statement-breakpoint
-- Hand-written: entities already in conflict take the time of their newest unresolved conflicting version.
UPDATE "entities" AS e SET "last_conflict_at" = (SELECT max(v."created_at") FROM "entity_versions" AS v WHERE v."entity_id" = e."id" AND v."conflict" IS NOT NULL AND NOT v."resolved") WHERE e."conflict" IS NOT NULL;--> statement-breakpoint
CREATE INDEX "entities_conflict_inbox_idx" ON "entities" ("dataset_id","last_conflict_at" DESC,"id" DESC) WHERE "conflict" is not null;
