ALTER TABLE "local_ids" DROP CONSTRAINT "local_ids_pkey";--> statement-breakpoint
ALTER TABLE "local_ids" ADD PRIMARY KEY ("dataset_name","device_id","local_id");