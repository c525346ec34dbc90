/// The OpenAPI 3 description of the API, served on `/openapi.json`. A test calls every path
/// it lists on a running server (and an unlisted one), so the two cannot drift apart.
enum OpenAPIDocument {
    static let json = #"""
        {
          "openapi": "3.0.3",
          "info": {"title": "FogScheduler API", "version": "1.0.0",
                   "description": "Submit tasks to the fog scheduler, follow them, cancel them, and look at the fog nodes. See docs/API.md."},
          "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "parameters": {
              "id": {"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}}
            },
            "responses": {
              "Error": {"description": "An error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            },
            "schemas": {
              "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                               "fields": {"type": "object", "additionalProperties": {"type": "string"}}}}}},
              "Resources": {"type": "object", "properties": {
                "cpu_millicores": {"type": "integer", "minimum": 1, "default": 100},
                "memory_mb": {"type": "integer", "minimum": 1, "default": 64},
                "storage_mb": {"type": "integer", "minimum": 0, "default": 0}}},
              "Constraints": {"type": "object", "properties": {
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "zone": {"type": "string", "nullable": true}, "origin": {"type": "string", "nullable": true},
                "max_latency_ms": {"type": "integer", "minimum": 0, "nullable": true}}},
              "TaskRequest": {"type": "object", "additionalProperties": false, "properties": {
                "name": {"type": "string", "maxLength": 200},
                "command": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 1024, "nullable": true},
                "kind": {"type": "string", "enum": ["noop", "sleep", "cpu", "alloc"], "nullable": true},
                "args": {"type": "object", "properties": {"seconds": {"type": "number"}, "millicores": {"type": "integer"},
                                                          "mb": {"type": "integer"}, "exit_code": {"type": "integer"}}},
                "class": {"type": "string", "enum": ["critical", "high", "normal", "low"], "default": "normal"},
                "resources": {"$ref": "#/components/schemas/Resources"},
                "constraints": {"$ref": "#/components/schemas/Constraints"},
                "deadline": {"type": "string", "format": "date-time", "nullable": true},
                "timeout_s": {"type": "number", "default": 300},
                "expected_s": {"type": "number", "nullable": true, "description": "expected run time on a speed-1.0 node"},
                "deadline_policy": {"type": "string", "enum": ["flag", "refuse"], "default": "flag"},
                "max_attempts": {"type": "integer", "minimum": 1, "maximum": 50, "default": 3},
                "affinity_key": {"type": "string", "nullable": true},
                "env": {"type": "object", "additionalProperties": {"type": "string"}},
                "stdin": {"type": "string", "format": "byte", "nullable": true},
                "idempotency_key": {"type": "string", "maxLength": 200, "nullable": true}}},
              "Attempt": {"type": "object", "properties": {
                "id": {"type": "string", "format": "uuid"}, "number": {"type": "integer"}, "node": {"type": "string"},
                "status": {"type": "string", "enum": ["queued", "running", "succeeded", "failed", "timed_out", "resource_exceeded",
                                                      "interrupted", "rejected", "lost", "cancelled"]},
                "epoch": {"type": "integer"}, "score": {"type": "object", "nullable": true},
                "queued_at": {"type": "string", "format": "date-time"}, "published_at": {"type": "string", "nullable": true},
                "started_at": {"type": "string", "nullable": true}, "finished_at": {"type": "string", "nullable": true},
                "exit_code": {"type": "integer", "nullable": true}, "cpu_seconds": {"type": "number", "nullable": true},
                "peak_memory_mb": {"type": "number", "nullable": true}, "stdout_tail": {"type": "string", "nullable": true},
                "stderr_tail": {"type": "string", "nullable": true},
                "output_lossy": {"type": "boolean", "description": "true when invalid UTF-8 or NUL bytes of the output were replaced by U+FFFD"},
                "reason": {"type": "string", "nullable": true}}},
              "Task": {"allOf": [{"$ref": "#/components/schemas/TaskRequest"}, {"type": "object", "properties": {
                "id": {"type": "string", "format": "uuid"},
                "status": {"type": "string", "enum": ["pending", "queued", "running", "succeeded", "failed", "timed_out",
                                                      "resource_exceeded", "dead", "cancelled"]},
                "node": {"type": "string", "nullable": true}, "attempt_count": {"type": "integer"}, "failures": {"type": "integer"},
                "pending_reason": {"type": "string", "nullable": true}, "reason": {"type": "string", "nullable": true},
                "not_before": {"type": "string", "nullable": true},
                "deadline_risk": {"type": "string", "nullable": true, "description": "why no live node could meet the deadline at submit"},
                "created_at": {"type": "string", "format": "date-time"}, "updated_at": {"type": "string", "format": "date-time"},
                "attempts": {"type": "array", "items": {"$ref": "#/components/schemas/Attempt"}},
                "events": {"type": "array", "items": {"type": "object"}}}}]}
            }
          },
          "paths": {
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "The process runs"}}}},
            "/readyz": {"get": {"summary": "Readiness: database, broker and Redis reachable",
              "responses": {"200": {"description": "Ready"}, "503": {"description": "A dependency is unreachable"}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "Prometheus text format"}}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3"}}}},
            "/v1/tasks": {
              "post": {"summary": "Submit one task, or {\"tasks\": [...]} (up to 1,000)", "security": [{"bearer": []}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"oneOf": [
                  {"$ref": "#/components/schemas/TaskRequest"},
                  {"type": "object", "required": ["tasks"], "properties": {"tasks": {"type": "array", "maxItems": 1000,
                    "items": {"$ref": "#/components/schemas/TaskRequest"}}}}]}}}},
                "responses": {"201": {"description": "Stored"}, "200": {"description": "An existing task (repeated idempotency key)"},
                  "400": {"$ref": "#/components/responses/Error"}, "401": {"$ref": "#/components/responses/Error"},
                  "403": {"$ref": "#/components/responses/Error"}, "409": {"$ref": "#/components/responses/Error"},
                  "413": {"$ref": "#/components/responses/Error"}, "415": {"$ref": "#/components/responses/Error"},
                  "422": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Error"}}},
              "get": {"summary": "List tasks, newest first (keyset pagination)", "security": [{"bearer": []}],
                "parameters": [
                  {"name": "status", "in": "query", "schema": {"type": "string"}},
                  {"name": "node", "in": "query", "schema": {"type": "string"}},
                  {"name": "class", "in": "query", "schema": {"type": "string"}},
                  {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}},
                  {"name": "cursor", "in": "query", "schema": {"type": "string"}}],
                "responses": {"200": {"description": "A page: {\"tasks\": [...], \"next_cursor\": ...}"},
                  "400": {"$ref": "#/components/responses/Error"}, "401": {"$ref": "#/components/responses/Error"},
                  "503": {"$ref": "#/components/responses/Error"}}}},
            "/v1/tasks/{id}": {"get": {"summary": "One task with its attempts and audit trail", "security": [{"bearer": []}],
              "parameters": [{"$ref": "#/components/parameters/id"}],
              "responses": {"200": {"description": "The task", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Task"}}}},
                "400": {"$ref": "#/components/responses/Error"}, "401": {"$ref": "#/components/responses/Error"},
                "404": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Error"}}}},
            "/v1/tasks/{id}/cancel": {"post": {"summary": "Cancel a task that has not ended", "security": [{"bearer": []}],
              "parameters": [{"$ref": "#/components/parameters/id"}],
              "responses": {"200": {"description": "The cancelled task"}, "400": {"$ref": "#/components/responses/Error"},
                "401": {"$ref": "#/components/responses/Error"}, "403": {"$ref": "#/components/responses/Error"},
                "404": {"$ref": "#/components/responses/Error"}, "409": {"$ref": "#/components/responses/Error"},
                "503": {"$ref": "#/components/responses/Error"}}}},
            "/v1/nodes": {"get": {"summary": "Registered fog nodes, alive or not, with their load", "security": [{"bearer": []}],
              "responses": {"200": {"description": "{\"nodes\": [...]}"}, "401": {"$ref": "#/components/responses/Error"},
                "503": {"$ref": "#/components/responses/Error"}}}},
            "/v1/stats": {"get": {"summary": "Counts by status and class, nodes, the leader", "security": [{"bearer": []}],
              "responses": {"200": {"description": "Statistics"}, "401": {"$ref": "#/components/responses/Error"},
                "503": {"$ref": "#/components/responses/Error"}}}}
          }
        }
        """#
}
