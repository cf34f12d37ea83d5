-- AlterTable
ALTER TABLE "TaskRun" ADD COLUMN "workerQueue" TEXT;
