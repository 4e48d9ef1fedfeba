package sixcast

/*
#include <sixcast.h>
*/
import "C"

import (
	"runtime"
	"sync"
)

// Config holds the settings of a Context, starting from the core's defaults. Fields are set by
// the names every binding shares ("port", "stratum0", "domain", "interfaces", "linger_ms", see
// docs/configuration.md), as text: decimal numbers, true/false, comma-separated lists.
// Safe for concurrent use.
type Config struct {
	mu  sync.Mutex
	ptr *C.SixcastConfig
}

// NewConfig returns a configuration with the core's defaults.
func NewConfig() *Config {
	config := &Config{ptr: C.sixcast_config_new()}
	runtime.SetFinalizer(config, func(config *Config) { C.sixcast_config_free(config.ptr) })
	return config
}

// Set sets field from text; value "" resets an optional field (port, rp, stratum0, domain,
// dns_server) to none, and a list field to the empty list. It fails with ErrInvalidConfig for
// an unknown field or a value that does not parse; ranges are checked by Validate and Open.
func (c *Config) Set(field, value string) error {
	if err := checkText(field, value); err != nil {
		return err
	}
	name, text := cString(field), cOptional(value)
	defer name.free()
	defer text.free()
	c.mu.Lock()
	defer c.mu.Unlock()
	var cError *C.SixcastError
	return check(C.sixcast_config_set(c.ptr, name.ptr, text.ptr, &cError), cError)
}

// Add appends item to the list field (interfaces, relay_keys or relay_issuers) as it is: it
// may be empty or hold a comma (and then fails validation).
func (c *Config) Add(field, item string) error {
	if err := checkText(field, item); err != nil {
		return err
	}
	name, text := cString(field), cString(item)
	defer name.free()
	defer text.free()
	c.mu.Lock()
	defer c.mu.Unlock()
	var cError *C.SixcastError
	return check(C.sixcast_config_add(c.ptr, name.ptr, text.ptr, &cError), cError)
}

// Get reads field as text in the form Set takes; "" for an optional field that is none.
func (c *Config) Get(field string) (string, error) {
	if err := checkText(field); err != nil {
		return "", err
	}
	name := cString(field)
	defer name.free()
	c.mu.Lock()
	defer c.mu.Unlock()
	var value *C.char
	var cError *C.SixcastError
	if err := check(C.sixcast_config_get(c.ptr, name.ptr, &value, &cError), cError); err != nil {
		return "", err
	}
	return takeString(value), nil
}

// Validate checks every field as opening a context would, without opening one: it fails with
// ErrInvalidConfig (or ErrInvalidAddress for a bad RP) naming the field.
func (c *Config) Validate() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var cError *C.SixcastError
	return check(C.sixcast_config_validate(c.ptr, &cError), cError)
}
