// Package dashboards holds dynopilot's Grafana dashboard (dynopilot.json), whose tests also cover the Prometheus
// alerting rules in ../alerts. It has no Go code of its own: the package exists so that `go test ./...` runs
// dashboards_test.go, which queries every panel of the dashboard and every alert rule against a real Prometheus
// watching `dynopilot demo`, scraped directly and through a Pushgateway, so the dashboard cannot silently drift away
// from the metrics dynopilot publishes.
package dashboards
