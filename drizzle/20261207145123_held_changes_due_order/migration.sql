DROP INDEX "held_changes_held_since_idx";--> statement-breakpoint
CREATE INDEX "held_changes_due_idx" ON "held_changes" ("held_since","change_id");