"""metafile.yml (OpenMMLab model-index format) agrees with the configs and
the README model-zoo table."""
import os.path as osp
import re

import yaml

from .conftest import REPO_ROOT


def _load():
    with open(osp.join(REPO_ROOT, 'metafile.yml')) as f:
        return yaml.safe_load(f)


def test_metafile_entries_point_at_existing_configs():
    meta = _load()
    collections = {c['Name'] for c in meta['Collections']}
    assert collections == {'SLaK'}
    names = [m['Name'] for m in meta['Models']]
    assert len(names) == len(set(names)) == 11
    for model in meta['Models']:
        assert model['In Collection'] in collections
        assert osp.isfile(osp.join(REPO_ROOT, model['Config'])), model
        for result in model['Results']:
            assert {'Task', 'Dataset', 'Metrics'} <= set(result)
            assert all(0 < v < 100 for v in result['Metrics'].values())


def test_readme_zoo_rows_match_metafile():
    """Every README row (config, published number, converter command, test
    command on the same file) has its metafile entry with that number."""
    readme = open(osp.join(REPO_ROOT, 'README.md')).read()
    zoo = readme.split('## Model zoo: official weights')[1].split('\n## ')[0]
    rows = [line for line in zoo.splitlines() if line.startswith('| ')][2:]
    by_config = {m['Config']: m for m in _load()['Models']}
    assert len(rows) == len(by_config)
    for row in rows:
        cells = [c.strip() for c in row.strip('|').split('|')]
        config = cells[1].strip('`')
        model = by_config[config]
        published = [float(v) for v in re.findall(r'\d+\.\d', cells[2])]
        metrics = [
            v for r in model['Results'] for v in r['Metrics'].values()
        ]
        assert published == metrics, (config, published, metrics)
        convert, test = re.findall(r'`([^`]+)`', cells[4])
        dst = convert.split()[-1]
        assert convert.startswith('python tools/model_converters/slak_to_')
        assert test == f'python tools/test.py {config} {dst}'
