// Channel helpers: the only Groovy logic between PLAN's task files and the processes. Items are
// [row, path...]: a task row (a Map from tasks/<PROCESS>.json) followed by its staged inputs in the order of the
// module's input tuple. Artifacts are [artifact id, path]. Everything is joined by id; PLAN checked that every
// id a row names is produced by some task (src/mergeir/pipeline/tasks.py, check_references). Last, the engine
// versions main.nf refuses.

// The rows of one process.
def taskRows(tasks, String process) {
    return tasks.map { dir -> dir.resolve("${process}.json") }.splitJson()
}

// [row, artifact of each named input...]; an input the row leaves null gets [] (nothing staged).
def withInputs(rows, List names, artifacts) {
    def none = artifacts.mix(Channel.of(['none', []]))
    return names.inject(rows.map { row -> [row] }) { items, name ->
        items.map { item -> [item[0].inputs[name] ?: 'none', item] }
            .combine(none, by: 0)
            .map { _id, item, artifact -> item + [artifact] }
    }
}

// [artifact id, path] for everything a process wrote: row.produces maps id -> path inside its output folder.
def artifactsOf(out) {
    return out.flatMap { row, dir -> row.produces.collect { id, sub -> [id, sub ? dir.resolve(sub) : dir] } }
}

// [row, [artifact of each id in row.inputs[name]...]] for a gather task: each part joined by id, grouped back
// per row as soon as all its parts are there (groupKey carries the count), sorted by name so that -resume sees
// the same input list whatever order the parts finished in.
def withParts(rows, String name, artifacts) {
    return rows.flatMap { row -> row.inputs[name].collect { id -> [id, row] } }
        .combine(artifacts, by: 0)
        .map { _id, row, artifact -> [groupKey(row.id, row.inputs[name].size()), row, artifact] }
        .groupTuple()
        .map { _key, rows_of_key, parts -> [rows_of_key[0], parts.toSorted { p -> p.name }] }
}

// Nextflow 25.10.0-25.10.6 with the strict parser (v2) keep the first value of a param assigned twice, so a
// profile's params (test: experiment, device; gpu: device) are silently ignored. main.nf refuses such runs.
def dropsProfileParams(String version, String parser) {
    def v = version.tokenize('.-')
    return parser == 'v2' && v.size() >= 3 && v[0] == '25' && v[1] == '10' && v[2].isInteger() && (v[2] as int) < 7
}
