package scaler

import "time"

// Status is what /api/policies and the status page show of one policy.
type Status struct {
	Policy   string `json:"policy"`
	App      string `json:"app"`
	Process  string `json:"process"`
	Source   string `json:"source"`
	Mode     string `json:"mode"`
	Interval string `json:"interval"`
	Enabled  bool   `json:"enabled"`
	DryRun   bool   `json:"dry_run"`

	Evaluated           bool      `json:"evaluated"`
	Size                string    `json:"size,omitempty"`
	Current             int       `json:"current"`
	Desired             int       `json:"desired"`
	Min                 int       `json:"min"`
	Max                 int       `json:"max"`
	Target              float64   `json:"target"`
	Reading             *float64  `json:"reading"`
	ReadingAt           time.Time `json:"reading_at,omitzero"`
	ReadingError        string    `json:"reading_error,omitempty"`
	RunningError        string    `json:"running_error,omitempty"` // PROTECT_BUSY: why the running jobs could not be read
	Failures            int       `json:"failures"`
	Action              string    `json:"action,omitempty"`
	Reason              string    `json:"reason,omitempty"`
	Explanation         string    `json:"explanation,omitempty"`
	DecidedAt           time.Time `json:"decided_at,omitzero"`
	CooldownLeftSeconds float64   `json:"cooldown_left_seconds"`
	LastScale           time.Time `json:"last_scale,omitzero"`
	LastError           string    `json:"last_error,omitempty"`
	RetryAt             time.Time `json:"retry_at,omitzero"` // after Heroku refused a PATCH: none before then
	CostPerHour         float64   `json:"cost_dollars_per_hour"`

	// Metrics are the policy's metrics, its own first (Reading, ReadingAt and Target above are its own's), then its
	// further ones (METRIC_2_, …): a decision's explanation names the one it is about.
	Metrics []MetricStatus `json:"metrics"`
	// Predict is the prediction of a policy that predicts (PREDICT), nil for one that does not.
	Predict *PredictStatus `json:"predict,omitempty"`
}

// MetricStatus is one metric of a policy as /api/policies and the status page show it: the policy's own (metric 1)
// and each further one (METRIC_2_, …).
type MetricStatus struct {
	Metric  int       `json:"metric"` // 1 for the policy's own, 2 for METRIC_2_, …
	Source  string    `json:"source"` // its kind, e.g. logdrain
	Measure string    `json:"measure,omitempty"`
	Mode    string    `json:"mode"`
	Target  float64   `json:"target"` // what its readings are compared with: TARGET, UP_ABOVE (step) or PER_DYNO (ratio)
	Value   *float64  `json:"value"`  // the last usable reading; nil before the first
	At      time.Time `json:"at,omitzero"`
	OK      bool      `json:"ok"`              // the last reading was usable
	Error   string    `json:"error,omitempty"` // why the last reading failed, redacted
}

// PredictStatus is what a policy that predicts (PREDICT) shows of its prediction.
type PredictStatus struct {
	On       bool   `json:"on"`       // predictions are on: the learned profile has held lately
	Quantity int    `json:"quantity"` // the quantity the profile needs ahead of now at the last decision, 0 for none
	Status   string `json:"status"`   // what the prediction is doing, for a person
}
