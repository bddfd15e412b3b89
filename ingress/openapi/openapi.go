// Package openapi holds the OpenAPI 3.1 document of the channel API, served at
// GET /openapi.json. It is written by hand, for people; a test in ingress checks that it
// lists exactly the routes the router serves.
package openapi

import _ "embed"

// Document is the OpenAPI document.
//
//go:embed openapi.json
var Document []byte
