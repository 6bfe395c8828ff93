DROP INDEX "held_changes_branch_position_uq";--> statement-breakpoint
CREATE UNIQUE INDEX "held_changes_run_position_uq" ON "held_changes" ("branch_id","base_version","dataset_name");