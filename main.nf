#!/usr/bin/env nextflow
/*
 * mergeir: merging a retrieval model with a domain LLM vs LoRA fine-tuning (Sasaki et al., CIKM 2025).
 *
 * PLAN (bin/plan.py tasks) resolves the whole DAG from the experiment file (data/paper.yaml, or
 * --experiment FILE) into one JSON task file per process; this file and subworkflows/ only join those rows
 * to the artifacts they name, by id. Each process runs its template (modules/local/templates/<module>.sh):
 *   PLAN                plan.py tasks
 *   PREPARE_COLLECTION  download.py collection
 *   DOWNLOAD_MODEL      download.py model
 *   MAKE_TINY           make_tiny.py models
 *   PREPARE_TRAINING    prepare_training.py mine
 *   SAMPLE_FULL         prepare_training.py trials
 *   MAKE_TRIALS         prepare_training.py trials
 *   LORA_TRAIN          lora_train.py
 *   SWEEP               sweep.py
 *   SWEEP_PART          sweep.py --alpha-lower
 *   GATHER_GRID         gather.py grid
 *   SELECT_ALPHA        report.py select-alpha, then plan.py chosen
 *   MERGE               merge.py
 *   ENCODE              encode.py
 *   GATHER_EMBEDDINGS   gather.py embeddings
 *   EVALUATE            evaluate.py
 *   REPORT              report.py build
 * (SWEEP_PART and GATHER_* only with --sweep_shards/--encode_shards > 1; docs/interfaces.md has the modules.)
 */

include { PLAN          } from './modules/local/plan'
include { INPUTS        } from './subworkflows/local/inputs'
include { TRAINING_SETS } from './subworkflows/local/training_sets'
include { LORA_ARM      } from './subworkflows/local/lora_arm'
include { MERGED_ARM    } from './subworkflows/local/merged_arm'
include { SCORING       } from './subworkflows/local/scoring'
include { dropsProfileParams } from './subworkflows/local/utils'

workflow {
    main:
    // registered first, so a failure in any step below (even PLAN) still reports
    workflow.onComplete = {
        log.info(workflow.success
            ? "mergeir: done; report in ${params.outdir}/report, run records in ${params.outdir}/pipeline_info"
            : "mergeir: failed (${workflow.errorMessage}); see ${params.outdir}/pipeline_info and .nextflow.log")
    }

    // such a run would plan the wrong study (the test profile's experiment and device, the gpu profile's device)
    if( dropsProfileParams(nextflow.version.toString(), System.getenv('NXF_SYNTAX_PARSER')) )
        error("mergeir: Nextflow ${nextflow.version} with NXF_SYNTAX_PARSER=v2 ignores params set by profiles; use 25.10.7 or later, or the v1 parser")

    // Nextflow reads a value that starts with '-' as the next option: `--slurm_options --qos=high` leaves the param
    // `true`, which sbatch would get as a directive
    ['slurm_queue', 'slurm_account', 'slurm_gres', 'slurm_options'].each { name ->
        if( params[name] in [true, 'true'] )
            error("mergeir: --${name} has no value; write --${name}='VALUE' when the value starts with '-'")
    }

    def experiment = file(params.experiment ?: "${projectDir}/data/paper.yaml", checkIfExists: true)
    // PLAN gets the params as one JSON object (the shell sees it only inside a quoted heredoc) and validates
    // them as text: a command-line `false` is a String under the strict parser
    def plan_params = groovy.json.JsonOutput.toJson([dataset: params.dataset, settings: params.settings,
        alpha_selection: params.alpha_selection, allow_unpinned: params.allow_unpinned, device: params.device,
        encode_shards: params.encode_shards, sweep_shards: params.sweep_shards].collectEntries { k, v -> [k, "${v}".toString()] })
    PLAN(experiment, plan_params)
    ch_tasks = PLAN.out.tasks

    INPUTS(ch_tasks, experiment)
    TRAINING_SETS(ch_tasks, INPUTS.out.artifacts)
    ch_available = INPUTS.out.artifacts.mix(TRAINING_SETS.out.artifacts)
    LORA_ARM(ch_tasks, ch_available)
    MERGED_ARM(ch_tasks, ch_available)
    SCORING(ch_tasks, MERGED_ARM.out.encode, MERGED_ARM.out.gather, MERGED_ARM.out.evaluate,
            INPUTS.out.artifacts.mix(LORA_ARM.out.artifacts, MERGED_ARM.out.artifacts), MERGED_ARM.out.grids)

    // pipeline_info/software_versions.yml: one YAML list item per distinct task environment (every module
    // sends its versions.yml to the `versions` topic)
    channel.topic('versions')
        .unique { f -> f.text }
        .collectFile(name: 'software_versions.yml', storeDir: "${params.outdir}/pipeline_info", sort: true, newLine: false)
}
