// Command riverworker runs real river jobs (github.com/riverqueue/river) for dynopilot's busy-dyno tests: a river
// client whose ID is $DYNO, as the README tells apps to set it, working one queue with jobs that run until the test
// lets them end.
//
//	riverworker -database URL -migrate            create river's tables and the release table, then exit
//	DYNO=worker.2 riverworker -database URL -queue two
//	riverworker -database URL -queue two -insert KEY   enqueue a job that ends once KEY is in busy_release
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// holdArgs is the job: it runs until its key is in busy_release.
type holdArgs struct {
	Key string `json:"key"`
}

func (holdArgs) Kind() string { return "hold" }

type holdWorker struct {
	river.WorkerDefaults[holdArgs]
	pool *pgxpool.Pool
}

func (w *holdWorker) Work(ctx context.Context, job *river.Job[holdArgs]) error {
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); {
		var one int
		err := w.pool.QueryRow(ctx, "SELECT 1 FROM busy_release WHERE key = $1", job.Args.Key).Scan(&one)
		if err == nil {
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

func main() {
	database := flag.String("database", "", "PostgreSQL URL (with ?search_path= for a schema of the test's own)")
	queue := flag.String("queue", river.QueueDefault, "the queue to work or insert into")
	migrate := flag.Bool("migrate", false, "create river's tables and busy_release, then exit")
	insert := flag.String("insert", "", "insert one job that runs until this key is in busy_release, then exit")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *database, *queue, *migrate, *insert); err != nil {
		fmt.Fprintln(os.Stderr, "riverworker:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, database, queue string, migrate bool, insert string) error {
	pool, err := pgxpool.New(ctx, database)
	if err != nil {
		return err
	}
	defer pool.Close()
	driver := riverpgxv5.New(pool)
	if migrate {
		if _, err := pool.Exec(ctx, "CREATE TABLE IF NOT EXISTS busy_release (key text PRIMARY KEY)"); err != nil {
			return err
		}
		m, err := rivermigrate.New(driver, nil)
		if err != nil {
			return err
		}
		_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
		return err
	}
	if insert != "" {
		client, err := river.NewClient(driver, &river.Config{})
		if err != nil {
			return err
		}
		_, err = client.Insert(ctx, holdArgs{Key: insert}, &river.InsertOpts{Queue: queue})
		return err
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &holdWorker{pool: pool})
	client, err := river.NewClient(driver, &river.Config{
		ID:         os.Getenv("DYNO"), // what river records in attempted_by: the dyno's name
		Queues:     map[string]river.QueueConfig{queue: {MaxWorkers: 1}},
		Workers:    workers,
		JobTimeout: 10 * time.Minute,
	})
	if err != nil {
		return err
	}
	if err := client.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return client.StopAndCancel(sctx)
}
