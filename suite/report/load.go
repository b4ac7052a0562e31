package report

// Load is a load run as the report shows it. The load runner fills it from
// its own result, so this package stays free of the runner's types.
type Load struct {
	Target  string `json:"target"`
	Summary string `json:"summary"` // one line, as the runner prints it
	Passed  bool   `json:"passed"`
	// Figures are the measurements, in display order.
	Figures    []Figure        `json:"figures"`
	Violations []LoadViolation `json:"violations,omitempty"`
}

// Figure is one named measurement, already formatted.
type Figure struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// LoadViolation is one broken invariant with the transcript of the
// session that saw it.
type LoadViolation struct {
	Kind       string   `json:"kind"`
	Detail     string   `json:"detail"`
	Transcript []string `json:"transcript"`
}
