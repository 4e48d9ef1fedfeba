module github.com/sixcast/sixcast/examples/config-push/agent-go

go 1.23

require github.com/sixcast/sixcast/bindings-go v0.0.0

// The module in this repository; outside it, drop this line to take a published version.
replace github.com/sixcast/sixcast/bindings-go => ../../../bindings-go
