package pipeline

// ProgressKey names where the progress of plan's range is recorded.
func ProgressKey(plan Plan) string { return plan.progressKey }
