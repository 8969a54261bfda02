#!/usr/bin/env nextflow
/*
 * mergeir: merging a retrieval model with a domain LLM vs LoRA fine-tuning
 * (Sasaki et al., "Effect of Model Merging in Domain-Specific Ad-hoc Retrieval", CIKM 2025).
 *
 * This file is the DAG and nothing else. What runs comes from the experiment file (data/paper.yaml by
 * default, --experiment FILE for your own study) through PLAN (bin/plan.py); every task is one bin/ command.
 * Channels carry meta maps: collection, arm (source | merged | lora), setting, trial, alpha_lower, alpha_upper.
 *
 *   experiment.yaml -> PLAN -> tasks/*.csv
 *   DOWNLOAD_MODEL | MAKE_TINY (source, domain)  PREPARE_COLLECTION
 *   source ----------------------------------------------------------> ENCODE -> EVALUATE -> REPORT
 *   PREPARE_TRAINING (full) -> MAKE_TRIALS (limited v1..vN) -> LORA_TRAIN -> ENCODE
 *   alpha: paper values, or SWEEP (grid on labelled queries) -> SELECT_ALPHA -> MERGE -> ENCODE
 */

include { PLAN               } from './modules/local/plan'
include { PREPARE_COLLECTION } from './modules/local/prepare_collection'
include { DOWNLOAD_MODEL     } from './modules/local/download_model'
include { MAKE_TINY          } from './modules/local/make_tiny'
include { PREPARE_TRAINING   } from './modules/local/prepare_training'
include { MAKE_TRIALS        } from './modules/local/make_trials'
include { MAKE_TRIALS as SAMPLE_FULL } from './modules/local/make_trials'
include { SWEEP              } from './modules/local/sweep'
include { SELECT_ALPHA       } from './modules/local/select_alpha'
include { MERGE              } from './modules/local/merge'
include { LORA_TRAIN         } from './modules/local/lora_train'
include { ENCODE             } from './modules/local/encode'
include { EVALUATE           } from './modules/local/evaluate'
include { REPORT             } from './modules/local/report'

// One spelling per alpha ("0.750" and "0.75" -> "0.75", "1.0" -> "1"), so equal merges are one task.
def alphaText(value) {
    return new BigDecimal(value.toString()).stripTrailingZeros().toPlainString()
}

// Task ids are plain Strings: a GString key would not match an equal String in join/combine.
def taskId(List parts) {
    return parts.collect { p -> p.toString() }.join('-')
}

// Paths written in the experiment file are relative to the file's own folder.
def fromExperiment(experiment, String rel) {
    def target = rel.startsWith('/') ? rel : "${experiment.parent}/${rel}"
    return file(target, checkIfExists: true)
}

workflow {
    main:
    def experiment = file(params.experiment ?: "${projectDir}/data/paper.yaml", checkIfExists: true)
    PLAN(experiment, params.dataset, params.settings, params.alpha_selection, params.allow_unpinned)

    ch_model_rows      = PLAN.out.models.splitCsv(header: true)
    ch_collection_rows = PLAN.out.collections.splitCsv(header: true)
    ch_trial_rows      = PLAN.out.trials.splitCsv(header: true)
    ch_lora            = PLAN.out.lora.splitCsv(header: true).first()
    ch_deepspeed       = ch_lora.map { l -> l.deepspeed ? fromExperiment(experiment, l.deepspeed) : [] }

    // ---- inputs: collections, and models downloaded at a pinned revision or built tiny for the test profile
    PREPARE_COLLECTION(
        ch_collection_rows.map { c ->
            def source = c.path ? fromExperiment(experiment, c.path) : []
            [[id: c.collection, collection: c.collection, revision: c.revision], c.download, source]
        }
    )
    ch_collection = PREPARE_COLLECTION.out.collection.map { meta, dir -> [meta.collection, dir] }

    DOWNLOAD_MODEL(
        ch_model_rows.filter { m -> !m.tiny }.map { m ->
            def source = m.source ? fromExperiment(experiment, m.source) : []
            [[id: m.model, model: m.model], m.repo_id, m.revision, source]
        }
    )
    MAKE_TINY(
        PLAN.out.tiny.splitCsv(header: true)
            .map { t -> [t.collection, t] }
            .join(ch_collection)
            .map { key, t, dir -> [[id: taskId(['tiny', key]), collection: key, seed: t.seed, layers: t.layers], dir] }
    )
    ch_model = DOWNLOAD_MODEL.out.model.map { meta, dir -> [meta.model, dir] }
        .mix(
            ch_model_rows.filter { m -> m.tiny }
                .combine(MAKE_TINY.out.models)
                .map { m, _meta, dir -> [m.model, dir.resolve(m.tiny)] }
        )

    // [collection, recipe row, collection dir, source model, domain model]
    ch_ready = ch_collection_rows.map { c -> [c.collection, c] }
        .join(ch_collection)
        .map { key, c, dir -> [c.source_model, key, c, dir] }
        .combine(ch_model, by: 0)
        .map { _source_key, key, c, dir, source -> [c.domain_model, key, c, dir, source] }
        .combine(ch_model, by: 0)
        .map { _domain_key, key, c, dir, source, domain -> [key, c, dir, source, domain] }

    // ---- labelled data: mined hard negatives for every labelled query; the full setting's set (all of them,
    // or a seeded sample of full_queries); limited trials v1..vN drawn from the full set
    PREPARE_TRAINING(
        ch_ready
            .filter { _key, c, _dir, _source, _domain -> (c.full_trials as int) + (c.limited_trials as int) > 0 }
            .map { key, c, dir, source, _domain -> [[id: taskId([key, 'mined']), collection: key], dir, source, c] },
        ch_lora
    )
    ch_mined = PREPARE_TRAINING.out.train.map { meta, train, sidecar -> [meta.collection, train, sidecar] }
        .combine(ch_collection_rows.map { c -> [c.collection, c] }, by: 0)
    SAMPLE_FULL(
        ch_mined.filter { _key, _train, _sidecar, c -> c.full_queries }
            .map { key, train, sidecar, c ->
                [[id: taskId([key, 'full']), collection: key, name: 'full', n_trials: 1, n_queries: c.full_queries, seed: c.full_seed], train, sidecar]
            }
    )
    ch_full_train = ch_mined.filter { _key, _train, _sidecar, c -> !c.full_queries }
        .map { key, train, sidecar, _c -> [key, train, sidecar] }
        .mix(SAMPLE_FULL.out.trials.map { meta, dir -> [meta.collection, dir.resolve('v1.jsonl'), dir.resolve('v1.jsonl.json')] })
    MAKE_TRIALS(
        ch_full_train
            .combine(ch_collection_rows.map { c -> [c.collection, c] }, by: 0)
            .filter { _key, _train, _sidecar, c -> (c.limited_trials as int) > 0 }
            .map { key, train, sidecar, c ->
                [[id: taskId([key, 'trials']), collection: key, name: 'trials', n_trials: c.limited_trials, n_queries: c.trial_queries, seed: c.trial_seed], train, sidecar]
            }
    )
    ch_training_sets = ch_full_train.map { key, train, sidecar -> [[key, 'full', 'full'], train, sidecar] }
        .mix(
            MAKE_TRIALS.out.trials.flatMap { meta, dir ->
                files("${dir}/v*.jsonl").collect { f -> [[meta.collection, 'limited', f.baseName], f, file("${f}.json")] }
            }
        )
    // [trial row, training file, its sidecar] for each planned (collection, setting, trial)
    ch_trials = ch_trial_rows.map { t -> [[t.collection, t.setting, t.trial], t] }
        .join(ch_training_sets)
        .map { _key, t, train, sidecar -> [t, train, sidecar] }

    // ---- LoRA arm: one adapter per (collection, setting, trial)
    LORA_TRAIN(
        ch_trials.map { t, train, sidecar -> [t.collection, t, train, sidecar] }
            .combine(ch_ready, by: 0)
            .map { key, t, train, sidecar, c, _dir, source, _domain ->
                def meta = [id: taskId([key, 'lora', t.setting, t.trial]), collection: key, arm: 'lora',
                            setting: t.setting, trial: t.trial, max_steps: t.max_steps]
                [meta, source, train, sidecar, c]
            },
        ch_lora,
        ch_deepspeed
    )

    // ---- merged arm: alpha from the paper, or chosen on the grid with the trial's own labelled queries
    SWEEP(
        ch_ready
            .filter { _key, c, _dir, _source, _domain -> c.alpha_selection == 'grid' }
            .map { key, c, dir, source, domain -> [[id: taskId([key, 'grid']), collection: key], source, domain, dir, c] }
    )
    SELECT_ALPHA(
        ch_trials.filter { t, _train, _sidecar -> t.alpha_selection == 'grid' }
            .map { t, train, sidecar -> [t.collection, t, train, sidecar] }
            .combine(SWEEP.out.grid.map { meta, grid -> [meta.collection, grid] }, by: 0)
            .combine(ch_collection_rows.map { c -> [c.collection, c.eval_split] }, by: 0)
            .map { key, t, train, sidecar, grid, eval_split ->
                def meta = [id: taskId([key, t.setting, t.trial]), collection: key, setting: t.setting, trial: t.trial,
                            eval_split: eval_split]
                [meta, grid, train, sidecar]
            }
    )
    ch_chosen = ch_trial_rows.filter { t -> t.alpha_selection == 'paper' }
        .map { t -> [t.collection, t.setting, t.trial, alphaText(t.paper_alpha_lower), alphaText(t.paper_alpha_upper), 'paper'] }
        .mix(
            SELECT_ALPHA.out.alpha.map { meta, json ->
                def a = new groovy.json.JsonSlurper().parseText(json.text)
                [meta.collection, meta.setting, meta.trial, alphaText(a.alpha_lower), alphaText(a.alpha_upper), 'grid']
            }
        )
    // one merge per distinct (collection, alpha_lower, alpha_upper), shared by every trial that chose it
    MERGE(
        ch_chosen.map { key, _setting, _trial, lower, upper, _how -> [key, lower, upper] }
            .unique()
            .combine(ch_ready, by: 0)
            .map { key, lower, upper, c, _dir, source, domain ->
                def meta = [id: taskId([key, 'merged', "a${lower}", upper]), collection: key, arm: 'merged',
                            alpha_lower: lower, alpha_upper: upper]
                [meta, source, domain, c]
            }
    )

    // ---- encode every model once, then score every task (merged models fan out to the trials that chose them)
    ENCODE(
        ch_ready
            .map { key, c, dir, source, _domain -> [[id: taskId([key, 'source']), collection: key, arm: 'source'], source, [], dir, c] }
            .mix(
                MERGE.out.model.map { meta, model -> [meta.collection, meta, model] }
                    .combine(ch_ready, by: 0)
                    .map { _key, meta, model, c, dir, _source, _domain -> [meta, model, [], dir, c] },
                LORA_TRAIN.out.adapter.map { meta, adapter -> [meta.collection, meta, adapter] }
                    .combine(ch_ready, by: 0)
                    .map { _key, meta, adapter, c, dir, source, _domain -> [meta, source, adapter, dir, c] }
            )
    )
    ch_embeddings = ENCODE.out.embeddings
    ch_merged_tasks = ch_chosen
        .map { key, setting, trial, lower, upper, how ->
            def meta = [id: taskId([key, 'merged', setting, trial]), collection: key, arm: 'merged', setting: setting,
                        trial: trial, alpha_lower: lower, alpha_upper: upper, alpha_selection: how]
            [taskId([key, 'merged', "a${lower}", upper]), meta]
        }
        .combine(ch_embeddings.map { meta, emb -> [meta.id, emb] }, by: 0)
        .map { _encode_id, meta, emb -> [meta, emb] }
    EVALUATE(
        ch_embeddings.filter { meta, _emb -> meta.arm != 'merged' }
            .mix(ch_merged_tasks)
            .map { meta, emb -> [meta.collection, meta, emb] }
            .combine(ch_ready, by: 0)
            .map { _key, meta, emb, c, dir, _source, _domain -> [meta, emb, dir, c] }
    )

    REPORT(
        EVALUATE.out.results.map { _meta, dir -> dir }.collect(),
        SWEEP.out.grid.map { _meta, grid -> grid }.collect().ifEmpty([])
    )

    // ---- pipeline_info/software_versions.yml: each distinct environment's tool versions, per process
    PLAN.out.versions
        .mix(
            PREPARE_COLLECTION.out.versions, DOWNLOAD_MODEL.out.versions, MAKE_TINY.out.versions,
            PREPARE_TRAINING.out.versions, MAKE_TRIALS.out.versions, LORA_TRAIN.out.versions, SWEEP.out.versions,
            SAMPLE_FULL.out.versions, SELECT_ALPHA.out.versions, MERGE.out.versions, ENCODE.out.versions, EVALUATE.out.versions,
            REPORT.out.versions
        )
        .unique { f -> f.text }
        .collectFile(name: 'software_versions.yml', storeDir: "${params.outdir}/pipeline_info", sort: true, newLine: false)

    onComplete:
    log.info(workflow.success
        ? "mergeir: done; report in ${params.outdir}/report, run records in ${params.outdir}/pipeline_info"
        : "mergeir: failed (${workflow.errorMessage}); see ${params.outdir}/pipeline_info and .nextflow.log")
}
