ALTER TABLE "api_tokens" ADD COLUMN "seq" bigserial;--> statement-breakpoint
-- Hand-written: tokens already stored are numbered in the order they were made (the column's
-- default numbered them in whatever order the table was read; as many numbers were drawn).
UPDATE "api_tokens" AS t SET "seq" = o."n" FROM (SELECT "id", row_number() OVER (ORDER BY "created_at", "id") AS "n" FROM "api_tokens") AS o WHERE o."id" = t."id";--> statement-breakpoint
CREATE UNIQUE INDEX "api_tokens_seq_idx" ON "api_tokens" ("seq");
