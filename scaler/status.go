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
}
