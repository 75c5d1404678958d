//! Every response of a scripted full workflow against the simulator, validated with a JSON
//! Schema validator against OVH's published schemas (vendored in `tests/fixtures/ovh-api`),
//! strictly as REFERENCE.md "Validating responses" says: every declared property required, no
//! undeclared property, nullable references rewritten as "ref or null", read mode for
//! responses, write mode for the request bodies the workflow sends; plus the documented 2026
//! differences.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::sim_support::{self, Api, Exchange, HYBRID, RAID, WINDOWS, assert_error};

// --- Schema loading and strictifying ---------------------------------------------------------

/// The schemas vendored into the repository (see SOURCE.md there): the suite reads nothing
/// outside the repository, so it passes in any clone.
fn schema_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ovh-api")
}

fn load(name: &str) -> Value {
    let path = schema_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Read,
    Write,
}

/// Definition key of a schema: file namespace + model name, made URI-safe.
fn def_key(ns: &str, name: &str) -> String {
    format!("{ns}.{}", name.replace(['<', '>'], "_"))
}

fn null_or(schema: Value) -> Value {
    json!({"anyOf": [schema, {"type": "null"}]})
}

/// OpenAPI 3.0 schema → draft-7 schema, strict in `mode`.
fn convert(node: &Value, ns: &str, mode: Mode) -> Value {
    let Some(obj) = node.as_object() else {
        return node.clone();
    };
    let nullable = obj.get("nullable") == Some(&Value::Bool(true));
    if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/components/schemas/");
        let target = json!({"$ref": format!("#/definitions/{}", def_key(ns, name))});
        return if nullable { null_or(target) } else { target };
    }
    if let Some(all) = obj.get("allOf").and_then(Value::as_array)
        && all.len() == 1
    {
        let inner = convert(&all[0], ns, mode);
        return if nullable { null_or(inner) } else { inner };
    }
    let mut out = Map::new();
    for (k, v) in obj {
        match k.as_str() {
            "nullable" | "readOnly" | "example" | "examples" | "description" | "x-enumNames" => {}
            "type" if nullable => {
                out.insert("type".into(), json!([v, "null"]));
            }
            "enum" => {
                let mut e = v.as_array().cloned().unwrap_or_default();
                if nullable {
                    e.push(Value::Null);
                }
                out.insert("enum".into(), Value::Array(e));
            }
            "items" => {
                out.insert(k.clone(), convert(v, ns, mode));
            }
            "additionalProperties" if v.is_object() => {
                out.insert(k.clone(), convert(v, ns, mode));
            }
            "properties" => {}
            "required" => {}
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        let mut p = Map::new();
        let mut required: Vec<Value> = Vec::new();
        let declared: Vec<&str> = obj
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for (name, prop) in props {
            let read_only = prop.get("readOnly") == Some(&Value::Bool(true));
            match mode {
                // Responses: the real API returns every declared property.
                Mode::Read => {
                    p.insert(name.clone(), convert(prop, ns, mode));
                    required.push(json!(name));
                }
                // Requests: a read-only property is an error; `required` as declared.
                Mode::Write => {
                    if read_only {
                        p.insert(name.clone(), Value::Bool(false));
                    } else {
                        p.insert(name.clone(), convert(prop, ns, mode));
                        if declared.contains(&name.as_str()) {
                            required.push(json!(name));
                        }
                    }
                }
            }
        }
        out.insert(
            "type".into(),
            out.get("type").cloned().unwrap_or(json!("object")),
        );
        out.insert("properties".into(), Value::Object(p));
        out.insert("required".into(), Value::Array(required));
        out.insert("additionalProperties".into(), Value::Bool(false));
    }
    Value::Object(out)
}

/// Legacy OVH "apis/models" (swagger 1.2-like) type → OpenAPI-style schema node.
fn swagger12_type(t: &str, generic: Option<&str>) -> Value {
    if let Some(inner) = t.strip_suffix("[]") {
        return json!({"type": "array", "items": swagger12_type(inner, generic)});
    }
    match t {
        "string" | "text" | "password" | "ipv4" | "ipv6" | "ip" | "phoneNumber" | "uuid" => {
            json!({"type": "string"})
        }
        "long" | "int" | "integer" => json!({"type": "integer"}),
        "double" | "float" => json!({"type": "number"}),
        "boolean" => json!({"type": "boolean"}),
        "date" => json!({"type": "string", "format": "date"}),
        "datetime" => json!({"type": "string", "format": "date-time"}),
        "T" => swagger12_type(generic.unwrap_or("string"), None),
        model => json!({"$ref": format!("#/components/schemas/{model}")}),
    }
}

/// Convert the legacy models to OpenAPI-3-style component schemas (then `convert` applies).
fn swagger12_models(doc: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, model) in doc["models"].as_object().expect("models") {
        if let Some(values) = model.get("enum").and_then(Value::as_array) {
            let long = model.get("enumType") == Some(&json!("long"));
            let values: Vec<Value> = values
                .iter()
                .map(
                    |v| match (long, v.as_str().and_then(|s| s.parse::<i64>().ok())) {
                        (true, Some(n)) => json!(n),
                        _ => v.clone(),
                    },
                )
                .collect();
            out.insert(
                name.clone(),
                json!({"type": if long { "integer" } else { "string" }, "enum": values}),
            );
            continue;
        }
        let generic = name
            .split_once('<')
            .map(|(_, g)| g.trim_end_matches('>').to_string());
        let mut props = Map::new();
        for (pname, p) in model["properties"].as_object().expect("properties") {
            let mut node = swagger12_type(p["type"].as_str().expect("type"), generic.as_deref());
            if p["canBeNull"] == json!(true) {
                node = if node.get("$ref").is_some() {
                    json!({"allOf": [node], "nullable": true})
                } else {
                    let mut n = node.as_object().cloned().unwrap_or_default();
                    n.insert("nullable".into(), json!(true));
                    Value::Object(n)
                };
            }
            if p["readOnly"] == json!(true)
                && let Some(n) = node.as_object_mut()
            {
                n.insert("readOnly".into(), json!(true));
            }
            props.insert(pname.clone(), node);
        }
        out.insert(name.clone(), json!({"type": "object", "properties": props}));
    }
    out
}

struct Schemas {
    ds: Value,
    iam: Value,
    it: Value,
    read: Map<String, Value>,
    write: Map<String, Value>,
}

/// The differences REFERENCE.md lists between the published files and the 2026 API.
fn patch_2026(ds: &mut Map<String, Value>, it: &mut Map<String, Value>) {
    let props = |m: &mut Map<String, Value>, name: &str| -> Map<String, Value> {
        m[name]["properties"]
            .as_object()
            .cloned()
            .unwrap_or_else(|| panic!("{name} has properties"))
    };
    let set = |m: &mut Map<String, Value>, name: &str, f: &dyn Fn(&mut Map<String, Value>)| {
        let mut p = props(m, name);
        f(&mut p);
        m[name]["properties"] = Value::Object(p);
    };
    set(ds, "dedicated.server.InstallTemplate", &|p| {
        p.remove("personal");
    });
    set(ds, "iam.ResourceMetadata", &|p| {
        p.insert(
            "state".into(),
            json!({"type": "string", "enum": ["EXPIRED", "IN_CREATION", "OK", "SUSPENDED"], "nullable": true, "readOnly": true}),
        );
    });
    set(ds, "dedicated.server.reinstall.Customizations", &|p| {
        p.insert(
            "configDriveMetadata".into(),
            json!({"type": "object", "additionalProperties": {"type": "string"}}),
        );
        p.insert("enableLacpBonding".into(), json!({"type": "boolean"}));
        p.insert(
            "nutanixConfiguration".into(),
            json!({"type": "object", "additionalProperties": {"type": "string"}}),
        );
        p.insert("version".into(), json!({"type": "string"}));
    });
    set(ds, "dedicated.server.reinstall.Storage", &|p| {
        p.insert("erase".into(), json!({"type": "boolean"}));
    });
    set(it, "dedicated.installationTemplate.Templates", &|p| {
        p.remove("customization");
        p.remove("hardRaidConfiguration");
        p.insert(
            "rootMountpoint".into(),
            json!({"type": "string", "nullable": true, "readOnly": true}),
        );
    });
    let input_types = it["dedicated.TemplateOsInputTypeEnum"]["enum"]
        .as_array_mut()
        .expect("enum");
    input_types.push(json!("hostname"));
}

impl Schemas {
    fn load() -> Self {
        let ds = load("dedicated-server.openapi3.json");
        let iam = load("iam-v2.openapi3.json");
        let it = load("dedicated-installationTemplate.swagger12.json");
        let mut ds_models = ds["components"]["schemas"]
            .as_object()
            .expect("components")
            .clone();
        let iam_models = iam["components"]["schemas"]
            .as_object()
            .expect("components")
            .clone();
        let mut it_models = swagger12_models(&it);
        patch_2026(&mut ds_models, &mut it_models);
        let mut read = Map::new();
        let mut write = Map::new();
        for (ns, models) in [("ds", &ds_models), ("iam", &iam_models), ("it", &it_models)] {
            for (name, m) in models {
                read.insert(def_key(ns, name), convert(m, ns, Mode::Read));
                write.insert(def_key(ns, name), convert(m, ns, Mode::Write));
            }
        }
        Schemas {
            ds,
            iam,
            it,
            read,
            write,
        }
    }

    fn root(&self, schema: Value, mode: Mode) -> Value {
        let defs = match mode {
            Mode::Read => &self.read,
            Mode::Write => &self.write,
        };
        json!({"$schema": "http://json-schema.org/draft-07/schema#", "definitions": defs, "allOf": [schema]})
    }

    fn model(&self, ns: &str, name: &str, mode: Mode) -> Value {
        assert!(
            match mode {
                Mode::Read => &self.read,
                Mode::Write => &self.write,
            }
            .contains_key(&def_key(ns, name)),
            "no model {ns}.{name}"
        );
        self.root(
            json!({"$ref": format!("#/definitions/{}", def_key(ns, name))}),
            mode,
        )
    }

    /// The schema of an answer of `method path` (OpenAPI path template) with `status`.
    fn response(&self, method: &str, template: &str, status: u16) -> Value {
        let (doc, ns, path) = if let Some(p) = template.strip_prefix("/v2") {
            (&self.iam, "iam", p)
        } else {
            (&self.ds, "ds", template)
        };
        if template.starts_with("/dedicated/installationTemplate") {
            return self.it_response(template, status);
        }
        let op = &doc["paths"][path][method.to_lowercase()];
        assert!(
            op.is_object(),
            "{method} {template} is not in the published schema"
        );
        let resp = &op["responses"][status.to_string()];
        if status != 200 && resp.is_null() {
            // Routes without declared error answers share the "Common error model".
            return self.error_model();
        }
        match resp["content"]["application/json"]["schema"].as_object() {
            Some(s) => self.root(
                convert(&Value::Object(s.clone()), ns, Mode::Read),
                Mode::Read,
            ),
            // `200` without content = void: the API answers `null`.
            None => self.root(json!({"type": "null"}), Mode::Read),
        }
    }

    fn it_response(&self, template: &str, status: u16) -> Value {
        if status != 200 {
            return self.error_model();
        }
        let api = self.it["apis"]
            .as_array()
            .expect("apis")
            .iter()
            .find(|a| a["path"] == template)
            .unwrap_or_else(|| panic!("{template} not in installationTemplate schema"));
        let ty = api["operations"][0]["responseType"]
            .as_str()
            .expect("responseType");
        self.root(
            convert(&swagger12_type(ty, None), "it", Mode::Read),
            Mode::Read,
        )
    }

    /// Expanded listing of a list operation: `x-expanded-response: DedicatedServerNetboot` names
    /// the component `dedicated.server.Netboot` (segments capitalised, dots removed).
    fn expanded(&self, template: &str) -> Value {
        let op = &self.ds["paths"][template]["get"];
        let name = op["x-expanded-response"]
            .as_str()
            .unwrap_or_else(|| panic!("GET {template} has no x-expanded-response"));
        let camel = |c: &str| {
            c.split('.')
                .map(|seg| {
                    let mut ch = seg.chars();
                    ch.next()
                        .map(|f| f.to_uppercase().chain(ch).collect::<String>())
                        .unwrap_or_default()
                })
                .collect::<String>()
        };
        let model = self.ds["components"]["schemas"]
            .as_object()
            .expect("components")
            .keys()
            .find(|k| camel(k) == name)
            .unwrap_or_else(|| panic!("no component for {name}"));
        self.root(json!({"type": "array", "items": {"$ref": format!("#/definitions/{}", def_key("ds", model))}}), Mode::Read)
    }

    /// Whether the published schemas describe `method template` at all.
    fn knows(&self, method: &str, template: &str) -> bool {
        if template.starts_with("/dedicated/installationTemplate") {
            return self.it["apis"]
                .as_array()
                .is_some_and(|a| a.iter().any(|api| api["path"] == template));
        }
        let (doc, path) = match template.strip_prefix("/v2") {
            Some(p) => (&self.iam, p),
            None => (&self.ds, template),
        };
        doc["paths"][path][method.to_lowercase()].is_object()
    }

    /// The "Common error model" the schema declares for error answers (strict).
    fn error_model(&self) -> Value {
        let s = &self.ds["paths"]["/dedicated/server/{serviceName}/reinstall"]["post"]["responses"]
            ["400"]["content"]["application/json"]["schema"];
        self.root(convert(s, "ds", Mode::Read), Mode::Read)
    }

    fn request(&self, method: &str, template: &str) -> Value {
        let (doc, ns, path) = match template.strip_prefix("/v2") {
            Some(p) => (&self.iam, "iam", p),
            None => (&self.ds, "ds", template),
        };
        let s = &doc["paths"][path][method.to_lowercase()]["requestBody"]["content"]["application/json"]
            ["schema"];
        assert!(
            s.is_object(),
            "{method} {template} has no request body schema"
        );
        self.root(convert(s, ns, Mode::Write), Mode::Write)
    }
}

fn errors(schema: &Value, instance: &Value) -> Vec<String> {
    // Formats (date-time, date, ipv4, uuid) are asserted too: a malformed date is a bug.
    let v = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .should_validate_formats(true)
        .build(schema)
        .unwrap_or_else(|e| panic!("schema does not compile: {e}"));
    v.iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// The auth layer's legacy error shape (not in the dedicated-server schema; REFERENCE §6.6).
fn legacy_error_schema() -> Value {
    json!({"type": "object", "additionalProperties": false, "required": ["errorCode", "httpCode", "message"],
           "properties": {"errorCode": {"type": "string"}, "httpCode": {"type": "string"}, "message": {"type": "string"}}})
}

/// The OpenAPI path template of a concrete request path.
fn template_of(path: &str) -> (String, bool) {
    let path = path.split('?').next().unwrap_or(path);
    let (v2, rest) = match path.strip_prefix("/v2") {
        Some(r) => (true, r),
        None => (
            false,
            path.trim_start_matches("/1.0").trim_start_matches("/v1"),
        ),
    };
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let t: Vec<&str> = segs
        .iter()
        .enumerate()
        .map(|(i, s)| match (v2, i, segs.get(..i)) {
            (false, 2, Some(["dedicated", "server"])) => "{serviceName}",
            (false, 2, Some(["dedicated", "installationTemplate"])) if *s != "templateInfos" => {
                "{templateName}"
            }
            (false, 4, Some([_, _, _, "boot"])) => "{bootId}",
            (false, 4, Some([_, _, _, "task"])) => "{taskId}",
            (false, 4, Some([_, _, _, "plannedIntervention"])) => "{interventionId}",
            (true, 2, Some(["iam", "resource"])) => "{resourceURN}",
            (true, 4, Some([_, _, _, "tag"])) => "{key}",
            _ => s,
        })
        .collect();
    let t = format!("/{}", t.join("/"));
    (if v2 { format!("/v2{t}") } else { t }, v2)
}

/// Validate one exchange; returns the problems.
fn check(schemas: &Schemas, ex: &Exchange) -> Vec<String> {
    let (template, _) = template_of(&ex.path);
    let status = ex.status.as_u16();
    let mut problems = Vec::new();
    if ex.headers.get("x-ovh-queryid").is_none() {
        problems.push("no X-Ovh-QueryId header".to_string());
    }
    let schema = if template == "/auth/time" {
        // `/auth` is outside the dedicated-server schema: a bare integer (REFERENCE §6.2).
        json!({"type": "integer"})
    } else if ex.body.get("errorCode").is_some() {
        legacy_error_schema()
    } else if status != 200 && !schemas.knows(ex.method.as_str(), &template) {
        // A path the API does not describe: its 404 answer is still the common error model.
        schemas.error_model()
    } else if status == 200 && ex.headers.contains_key("x-pagination-elements") {
        // Expanded listing: an array of the model the operation's `x-expanded-response` names.
        schemas.expanded(&template)
    } else {
        schemas.response(ex.method.as_str(), &template, status)
    };
    problems.extend(errors(&schema, &ex.body));
    if let Some(req) = &ex.request
        && status == 200
    {
        for e in errors(&schemas.request(ex.method.as_str(), &template), req) {
            problems.push(format!("request body: {e}"));
        }
    }
    problems
        .into_iter()
        .map(|p| format!("{} {} → {status}: {p}", ex.method, ex.path))
        .collect()
}

/// Batch answers: each item's `value` against the single-object schema.
fn check_batch(schemas: &Schemas, ex: &Exchange, item_template: &str) -> Vec<String> {
    let item = schemas.response("GET", item_template, 200);
    let wrapper = json!({"type": "array", "items": {"type": "object", "additionalProperties": false,
        "required": ["key", "value", "error"],
        "properties": {"key": {"type": "string"}, "value": true, "error": {"type": ["string", "null"]}}}});
    let mut problems = errors(&wrapper, &ex.body);
    for it in ex.body.as_array().into_iter().flatten() {
        if !it["value"].is_null() {
            problems.extend(errors(&item, &it["value"]));
        }
    }
    problems
}

// --- The workflow ------------------------------------------------------------------------------

fn s(sn: &str) -> String {
    format!("/1.0/dedicated/server/{sn}")
}

#[tokio::test]
async fn every_response_of_a_full_workflow_matches_the_published_schemas() {
    let schemas = Schemas::load();
    let sim = sim_support::start_default().await;
    let mut api = Api::new(&sim);

    // Unauthenticated catalogue and time.
    let time = api
        .send(Method::GET, "/1.0/auth/time", None, &[], false)
        .await;
    assert!(time.body.is_i64());
    let names = api
        .send(
            Method::GET,
            "/1.0/dedicated/installationTemplate",
            None,
            &[],
            false,
        )
        .await;
    for n in [
        "debian12_64",
        "win2022-std_64",
        "byolinux_64",
        "proxmox8_64",
    ] {
        assert!(names.body.as_array().unwrap().contains(&json!(n)));
        api.send(
            Method::GET,
            &format!("/1.0/dedicated/installationTemplate/{n}"),
            None,
            &[],
            false,
        )
        .await;
    }
    api.send(
        Method::GET,
        "/1.0/dedicated/installationTemplate/templateInfos",
        None,
        &[],
        false,
    )
    .await;
    api.send(
        Method::GET,
        "/v1/dedicated/installationTemplate/nope_64",
        None,
        &[],
        false,
    )
    .await;

    // Servers: list, tag filter, expanded pages, each object.
    let list = api.get("/1.0/dedicated/server").await;
    assert_eq!(list.body.as_array().unwrap().len(), 3);
    let filtered = api.get("/1.0/dedicated/server?iamTags=%7B%22env%22%3A%5B%7B%22operator%22%3A%22EQ%22%2C%22value%22%3A%22prod%22%7D%5D%7D").await;
    assert_eq!(filtered.body, json!([HYBRID]));
    for page in ["1", "2"] {
        let ex = api
            .send(
                Method::GET,
                "/1.0/dedicated/server",
                None,
                &[
                    ("X-Pagination-Mode", "CachedObjectList-Pages"),
                    ("X-Pagination-Size", "2"),
                    ("X-Pagination-Number", page),
                ],
                true,
            )
            .await;
        assert_eq!(ex.headers["x-pagination-elements"], "3");
        assert!(ex.body[0].is_object());
    }
    for sn in [HYBRID, RAID, WINDOWS] {
        let ex = api.get(&s(sn)).await;
        assert_eq!(ex.body["name"], sn);
        api.get(&format!("{}/specifications/hardware", s(sn))).await;
        api.get(&format!("{}/install/compatibleTemplates", s(sn)))
            .await;
        api.get(&format!("{}/install/hardwareRaidProfile", s(sn)))
            .await;
        let schemes = format!(
            "{}/install/compatibleTemplatePartitionSchemes?templateName=debian12_64",
            s(sn)
        );
        api.get(&schemes).await;
    }
    api.get(&s("ns9999999.ip-1-2-3.eu")).await;

    // Boots.
    let boots = api.get(&format!("{}/boot", s(HYBRID))).await;
    for id in boots.body.as_array().unwrap() {
        api.get(&format!("{}/boot/{id}", s(HYBRID))).await;
    }
    let expanded = [("X-Pagination-Mode", "CachedObjectList-Pages")];
    let eb = api
        .send(
            Method::GET,
            &format!("{}/boot", s(HYBRID)),
            None,
            &expanded,
            true,
        )
        .await;
    assert_eq!(
        eb.body.as_array().unwrap().len(),
        boots.body.as_array().unwrap().len()
    );
    let rescue = api
        .get(&format!("{}/boot?bootType=rescue", s(HYBRID)))
        .await;
    let rescue_id = rescue.body[0].as_u64().unwrap();

    // PUT: bootScript, then bootId (exclusive), "" clears.
    let script = "#!ipxe\necho Boot first local hdd in LEGACY mode\nsanboot --no-describe --drive 0x80\nexit 1\n";
    let put = api.put(&s(HYBRID), json!({"bootScript": script})).await;
    assert_eq!((put.status.as_u16(), &put.body), (200, &Value::Null));
    let ex = api.get(&s(HYBRID)).await;
    assert_eq!(
        (&ex.body["bootId"], &ex.body["bootScript"]),
        (&Value::Null, &json!(script))
    );
    api.put(
        &s(HYBRID),
        json!({"bootId": rescue_id, "rescueSshKey": "ssh-ed25519 AAAAC3Nza test"}),
    )
    .await;
    let ex = api.get(&s(HYBRID)).await;
    assert_eq!(
        (&ex.body["bootId"], &ex.body["bootScript"]),
        (&json!(rescue_id), &Value::Null)
    );
    api.put(
        &s(HYBRID),
        json!({"bootId": 1, "rescueSshKey": "", "monitoring": true}),
    )
    .await;
    assert_eq!(api.get(&s(HYBRID)).await.body["rescueSshKey"], Value::Null);
    let ro = api.put(&s(HYBRID), json!({"os": "debian11_64"})).await;
    assert_error(&ro, 400, "Client::BadRequest");

    // Reboot task to done.
    let reboot = api.post(&format!("{}/reboot", s(WINDOWS)), None).await;
    assert_eq!(reboot.body["function"], "hardReboot");
    let id = reboot.body["taskId"].as_u64().unwrap();
    api.get(&format!("{}/task", s(WINDOWS))).await;
    let et = api
        .send(
            Method::GET,
            &format!("{}/task", s(WINDOWS)),
            None,
            &expanded,
            true,
        )
        .await;
    assert_eq!(et.body[0]["function"], "hardReboot");
    api.get(&format!("{}/task/{id}", s(WINDOWS))).await;
    sim.advance(Duration::from_secs(600));
    let done = api.get(&format!("{}/task/{id}", s(WINDOWS))).await;
    assert_eq!(done.body["status"], "done");

    // Reinstall errors with their published classes.
    let reinstall = format!("{}/reinstall", s(HYBRID));
    assert_error(
        &api.post(&reinstall, Some(json!({"operatingSystem": "debian99_64"})))
            .await,
        404,
        "Client::NotFound::OperatingSystem",
    );
    assert_error(
        &api.post(
            &format!("{}/reinstall", s(RAID)),
            Some(json!({"operatingSystem": "win2022-std_64"})),
        )
        .await,
        409,
        "Client::Conflict::OperatingSystemIncompatible",
    );
    assert_error(
        &api.post(
            &reinstall,
            Some(json!({"operatingSystem": "debian12_64", "customizations": {"sshkey": "x"}})),
        )
        .await,
        400,
        "Client::BadRequest::CustomizationName",
    );
    assert_error(
        &api.post(&reinstall, Some(json!({"operatingSystem": "debian12_64", "storage": [{"diskGroupId": 1}, {"diskGroupId": 2}]}))).await,
        501,
        "Server::NotImplemented::DiskGroupMultipleConfigs",
    );
    assert_error(
        &api
            .post(
                &reinstall,
                Some(json!({"operatingSystem": "debian12_64", "storage": [{"partitioning": {"layout": [{"fileSystem": "ntfs", "mountPoint": "/"}]}}]})),
            )
            .await,
        400,
        "Client::BadRequest::PartitionIncompatibleFs",
    );

    // A real reinstall keeping the NVMe group, polled to done.
    let body = json!({
        "operatingSystem": "debian12_64",
        "customizations": {"hostname": "db-1", "sshKey": "ssh-ed25519 AAAAC3Nza test"},
        "storage": [
            {"diskGroupId": 1, "partitioning": {"layout": [
                {"fileSystem": "ext4", "mountPoint": "/boot", "raidLevel": 1, "size": 1024},
                {"fileSystem": "swap", "mountPoint": "swap", "size": 2048},
                {"fileSystem": "ext4", "mountPoint": "/", "raidLevel": 1, "size": 0, "extras": {"lv": {"name": "root"}}}]}},
            {"diskGroupId": 2, "erase": false}]
    });
    let task = api.post(&reinstall, Some(body.clone())).await;
    assert_eq!(
        (
            task.status.as_u16(),
            &task.body["status"],
            &task.body["function"]
        ),
        (200, &json!("init"), &json!("reinstallServer"))
    );
    let tid = task.body["taskId"].as_u64().unwrap();
    assert_error(
        &api.post(&reinstall, Some(body)).await,
        400,
        "Client::BadRequest::TaskAlreadyExists",
    );
    api.get(&format!("{}/task?function=reinstallServer", s(HYBRID)))
        .await;
    api.get(&format!("{}/install/status", s(HYBRID))).await;
    sim.advance(Duration::from_secs(300));
    let st = api.get(&format!("{}/install/status", s(HYBRID))).await;
    assert!(
        st.body["progress"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["status"] == "done")
    );
    assert_eq!(
        api.get(&format!("{}/task/{tid}", s(HYBRID))).await.body["status"],
        "doing"
    );
    sim.advance(Duration::from_secs(1200));
    assert_eq!(
        api.get(&format!("{}/task/{tid}", s(HYBRID))).await.body["status"],
        "done"
    );
    let idle = api.get(&format!("{}/install/status", s(HYBRID))).await;
    assert_eq!(idle.status.as_u16(), 404);
    assert_eq!(
        idle.body["message"],
        "Server is not being installed or reinstalled at the moment"
    );

    // Legacy install/start and a cancelled task.
    let legacy = api
        .post(
            &format!("{}/install/start", s(RAID)),
            Some(json!({"templateName": "alma9_64", "details": {"customHostname": "web-1"}, "userMetadata": [{"key": "sshKey", "value": "ssh-ed25519 AAAA"}]})),
        )
        .await;
    assert_eq!(legacy.body["function"], "reinstallServer");
    let lid = legacy.body["taskId"].as_u64().unwrap();
    assert_eq!(
        api.post(&format!("{}/task/{lid}/cancel", s(RAID)), None)
            .await
            .body,
        Value::Null
    );
    assert_eq!(
        api.get(&format!("{}/task/{lid}", s(RAID))).await.body["status"],
        "cancelled"
    );

    // IAM v2 tags, visible in v1.
    let urn = format!("urn:v1:eu:resource:dedicatedServer:{RAID}");
    let enc = urn.replace(':', "%3A");
    api.get("/v2/iam/resource").await;
    api.get(&format!(
        "/v2/iam/resource?resourceType=dedicatedServer&resourceName={RAID}"
    ))
    .await;
    api.get(&format!("/v2/iam/resource/{enc}")).await;
    api.put(
        &format!("/v2/iam/resource/{enc}"),
        json!({"tags": {"team": "db", "ovhform:fingerprint": "sha256:abc"}}),
    )
    .await;
    api.post(
        &format!("/v2/iam/resource/{enc}/tag"),
        Some(json!({"key": "env", "value": "staging"})),
    )
    .await;
    api.delete(&format!("/v2/iam/resource/{enc}/tag/team"))
        .await;
    assert_error(
        &api.post(
            &format!("/v2/iam/resource/{enc}/tag"),
            Some(json!({"key": "ovh:x", "value": "y"})),
        )
        .await,
        400,
        "Client::BadRequest",
    );
    let tags = api.get(&s(RAID)).await.body["iam"]["tags"].clone();
    assert_eq!(
        tags,
        json!({"env": "staging", "ovhform:fingerprint": "sha256:abc"})
    );

    // Auth errors.
    let bad = super::sim_support::Api::new(&sim)
        .with_credentials(ovhform::sim::SimCredentials {
            consumer_key: "wrong".into(),
            ..sim.credentials()
        })
        .get(&s(HYBRID))
        .await;
    api.log.push(bad.clone());
    assert_eq!(bad.status.as_u16(), 403);
    let tampered = super::sim_support::Api::new(&sim)
        .with_credentials(ovhform::sim::SimCredentials {
            application_secret: "tampered".into(),
            ..sim.credentials()
        })
        .get(&s(HYBRID))
        .await;
    api.log.push(tampered.clone());
    assert_error(&tampered, 400, "Client::BadRequest");
    let unsigned = api.send(Method::GET, &s(HYBRID), None, &[], false).await;
    assert_eq!(unsigned.status.as_u16(), 403);
    assert_error(
        &api.get("/1.0/dedicated/nope").await,
        404,
        "Client::NotFound",
    );

    // A failed install: the error step in install/status and the failed task.
    assert!(sim.fail_next_install(
        RAID,
        ovhform::sim::InstallFailure {
            step: 9,
            status: ovhform::sim::TaskStatus::OvhError,
            error: "Partitioning failed".into(),
        },
    ));
    let failing = api
        .post(
            &format!("{}/reinstall", s(RAID)),
            Some(
                json!({"operatingSystem": "debian12_64", "customizations": {"hostname": "web-2"}}),
            ),
        )
        .await;
    let fid = failing.body["taskId"].as_u64().unwrap();
    sim.advance(Duration::from_secs(1200));
    let st = api.get(&format!("{}/install/status", s(RAID))).await;
    assert!(
        st.body["progress"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["status"] == "error" && p["error"] == "Partitioning failed"),
        "{}",
        st.body
    );
    assert_eq!(
        api.get(&format!("{}/task/{fid}", s(RAID))).await.body["status"],
        "ovhError"
    );

    // Validate everything recorded.
    let mut problems: Vec<String> = api.log.iter().flat_map(|ex| check(&schemas, ex)).collect();

    // Batch GETs (checked item by item).
    let batch = api
        .send(
            Method::GET,
            &format!("/1.0/dedicated/server/{HYBRID},{RAID},nope"),
            None,
            &[("X-Ovh-Batch", ",")],
            true,
        )
        .await;
    assert_eq!(batch.body.as_array().unwrap().len(), 3);
    assert!(batch.body[2]["error"].is_string());
    problems.extend(check_batch(
        &schemas,
        &batch,
        "/dedicated/server/{serviceName}",
    ));
    let tbatch = api
        .send(
            Method::GET,
            &format!("{}/task/{tid},{id}", s(HYBRID)),
            None,
            &[("X-Ovh-Batch", ",")],
            true,
        )
        .await;
    problems.extend(check_batch(
        &schemas,
        &tbatch,
        "/dedicated/server/{serviceName}/task/{taskId}",
    ));

    assert!(
        problems.is_empty(),
        "{} schema violations:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(
        api.log.len() >= 60,
        "workflow recorded only {} exchanges",
        api.log.len()
    );
    assert_eq!(sim.server(HYBRID).unwrap().os, "debian12_64");
    sim.shutdown().await;
}

#[test]
fn the_strict_validator_rejects_misnamed_missing_and_extra_fields() {
    let schemas = Schemas::load();
    let server = schemas.model("ds", "dedicated.server.DedicatedWithIAM", Mode::Read);
    let good = sim_support::fleet()[0].to_json();
    assert_eq!(errors(&server, &good), Vec::<String>::new());

    let mut misnamed = good.clone();
    let v = misnamed.as_object_mut().unwrap().remove("bootId").unwrap();
    misnamed["bootID"] = v;
    let e = errors(&server, &misnamed);
    assert!(
        e.iter().any(|e| e.contains("bootID")) && e.iter().any(|e| e.contains("bootId")),
        "{e:?}"
    );

    let mut nested = good.clone();
    nested["iam"]["urnX"] = json!("x");
    assert!(!errors(&server, &nested).is_empty());

    // A nullable reference accepts null, but not a wrong type.
    let mut iam_null = good.clone();
    iam_null["iam"] = Value::Null;
    assert!(errors(&server, &iam_null).is_empty());
    iam_null["iam"] = json!("x");
    assert!(!errors(&server, &iam_null).is_empty());

    // Formats are checked.
    let mut bad_ip = good.clone();
    bad_ip["ip"] = json!("51.68.1.999");
    assert!(!errors(&server, &bad_ip).is_empty());
    let task = schemas.model("ds", "dedicated.server.Task", Mode::Read);
    let t = json!({"comment": null, "doneDate": null, "function": "hardReboot", "lastUpdate": null, "needSchedule": false,
        "note": null, "plannedInterventionId": null, "startDate": "yesterday", "status": "init", "tags": null,
        "taskId": 1, "ticketReference": null});
    assert!(
        errors(&task, &t).iter().any(|e| e.contains("date-time")),
        "{:?}",
        errors(&task, &t)
    );

    // Write mode: read-only keys and misspelt keys in request bodies are refused.
    let put = schemas.request("PUT", "/dedicated/server/{serviceName}");
    assert!(errors(&put, &json!({"bootId": 1})).is_empty());
    assert!(!errors(&put, &json!({"os": "debian12_64"})).is_empty());
    let reinstall = schemas.request("POST", "/dedicated/server/{serviceName}/reinstall");
    assert!(errors(&reinstall, &json!({"operatingSystem": "debian12_64", "storage": [{"diskGroupId": 2, "erase": false}]})).is_empty());
    assert!(
        !errors(
            &reinstall,
            &json!({"operatingSystem": "debian12_64", "customizations": {"sshkey": "x"}})
        )
        .is_empty()
    );
    assert!(
        !errors(&reinstall, &json!({"customizations": {}})).is_empty(),
        "operatingSystem is required"
    );
}

#[test]
fn path_templates() {
    assert_eq!(
        template_of("/1.0/dedicated/server/ns1.eu/task/12?x=1").0,
        "/dedicated/server/{serviceName}/task/{taskId}"
    );
    assert_eq!(
        template_of("/v1/dedicated/installationTemplate/templateInfos").0,
        "/dedicated/installationTemplate/templateInfos"
    );
    assert_eq!(
        template_of("/v2/iam/resource/urn%3Ax/tag/k").0,
        "/v2/iam/resource/{resourceURN}/tag/{key}"
    );
}

/// OVH's planned interventions (issue 10): the id list, each object, the expanded listing and
/// a batch GET in the published shapes; 404s for an unknown server or id with the API's error
/// model; the same authentication as every other route. Interventions come from the
/// simulator's test hook, as OVH would schedule them.
#[tokio::test]
async fn planned_intervention_answers_match_the_published_schemas() {
    let schemas = Schemas::load();
    let sim = sim_support::start_default().await;
    let mut api = Api::new(&sim);
    let list = format!("{}/plannedIntervention", s(HYBRID));

    assert_eq!(api.get(&list).await.body, json!([]));
    let http = sim_support::http();
    let hook = format!(
        "{}/_sim/server/{HYBRID}/planned-intervention",
        sim.root_url()
    );
    let mut ids = Vec::new();
    for body in [
        json!({"wantedStartDate": "2026-03-02T08:00:00Z", "expectedEndDate": "2026-03-02T12:00:00Z"}),
        json!({"status": "doing"}),
    ] {
        let r = http.post(&hook).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let made: Value = r.json().await.unwrap();
        ids.push(made["id"].as_u64().expect("an id"));
    }
    // What the hook refuses: a status outside the enum, an unknown server.
    let bad = http
        .post(&hook)
        .json(&json!({"status": "soon"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let nobody = http
        .post(format!(
            "{}/_sim/server/ns9999999.ip-1-2-3.eu/planned-intervention",
            sim.root_url()
        ))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(nobody.status(), 404);

    assert_eq!(api.get(&list).await.body, json!(ids));
    let first = api.get(&format!("{list}/{}", ids[0])).await;
    assert_eq!(
        first.body,
        json!({"expectedEndDate": "2026-03-02T12:00:00Z", "id": ids[0], "status": "todo",
            "type": "HARDWARE_UPGRADE_ON_ACTIVE_SERVER", "wantedStartDate": "2026-03-02T08:00:00Z"})
    );
    assert_eq!(
        api.get(&format!("{list}/{}", ids[1])).await.body["status"],
        "doing"
    );
    // OVH finishes the first one.
    let done = http
        .put(format!("{hook}/{}", ids[0]))
        .json(&json!({"status": "done"}))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    assert_eq!(
        api.get(&format!("{list}/{}", ids[0])).await.body["status"],
        "done"
    );
    let ex = api
        .send(
            Method::GET,
            &list,
            None,
            &[("X-Pagination-Mode", "CachedObjectList-Pages")],
            true,
        )
        .await;
    assert_eq!(ex.body.as_array().map(Vec::len), Some(2));
    assert_eq!(ex.headers["x-pagination-elements"], "2");

    // Errors: an unknown id, an unknown server, an id that is not a number.
    assert_error(
        &api.get(&format!("{list}/999")).await,
        404,
        "Client::NotFound",
    );
    let other = format!("{}/plannedIntervention", s("ns9999999.ip-1-2-3.eu"));
    assert_eq!(api.get(&other).await.status.as_u16(), 404);
    assert_eq!(
        api.get(&format!("{other}/{}", ids[0]))
            .await
            .status
            .as_u16(),
        404
    );
    assert_eq!(api.get(&format!("{list}/abc")).await.status.as_u16(), 400);
    // The same authentication as every route: unsigned and wrongly signed are refused.
    let unsigned = api.send(Method::GET, &list, None, &[], false).await;
    let mut wrong = sim.credentials();
    wrong.application_secret = "not-the-secret".into();
    let mut forged = Api::new(&sim).with_credentials(wrong);
    let bad_sig = forged.get(&list).await;
    for (what, ex) in [("unsigned", &unsigned), ("bad signature", &bad_sig)] {
        assert!(
            matches!(ex.status.as_u16(), 400 | 401 | 403),
            "{what}: {} {}",
            ex.status,
            ex.body
        );
        assert!(ex.body.get("id").is_none(), "{what}: {}", ex.body);
    }
    // A policy without `plannedIntervention/get`: 403 on these routes only.
    sim.update_server(HYBRID, |s| s.interventions_denied = true);
    assert_eq!(api.get(&list).await.status.as_u16(), 403);
    assert_eq!(api.get(&s(HYBRID)).await.status.as_u16(), 200);
    sim.update_server(HYBRID, |s| s.interventions_denied = false);

    let mut problems: Vec<String> = api.log.iter().flat_map(|ex| check(&schemas, ex)).collect();
    let batch = api
        .send(
            Method::GET,
            &format!("{list}/{},{},999", ids[0], ids[1]),
            None,
            &[("X-Ovh-Batch", ",")],
            true,
        )
        .await;
    assert_eq!(batch.body.as_array().map(Vec::len), Some(3));
    assert!(batch.body[2]["error"].is_string(), "{}", batch.body);
    problems.extend(check_batch(
        &schemas,
        &batch,
        "/dedicated/server/{serviceName}/plannedIntervention/{interventionId}",
    ));
    assert!(
        problems.is_empty(),
        "{} schema violations:\n{}",
        problems.len(),
        problems.join("\n")
    );
    sim.shutdown().await;
}
