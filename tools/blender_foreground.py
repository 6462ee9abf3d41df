"""One random foreground rendered by Blender with exact alpha: run *inside* Blender, by
``tools/render_foregrounds.py`` (never imported by ``core``)::

    blender -b -noaudio --factory-startup --python tools/blender_foreground.py -- SEED OUT.exr SIZE SAMPLES

The scene is drawn from ``SEED``: a body (sphere, cube, torus, cylinder or a noisy blob, squashed
and turned) grown with particle hair — fur, wisps, curls or long strands of one colour family, at
times with the body itself left out so only the hairs show — or a veil (a waved sheet mixing a
coloured surface with Blender's transparent BSDF, so its alpha is partial over a large area),
lit by a sun and an area light of random colour and a world colour, seen by a camera that at
times is out of focus. The film is transparent, so the EXR's alpha is the coverage Cycles
integrates, with the colour premultiplied by it in scene-linear light: the foreground colour and
alpha of a composite are exact, unlike the estimates of a photographed object.
"""

from __future__ import annotations

import colorsys
import math
import random
import sys

import bpy  # Blender's own module: this file only runs inside Blender


def _material(name: str, colour: tuple[float, float, float], roughness: float) -> bpy.types.Material:
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    bsdf = mat.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = (*colour, 1.0)
    bsdf.inputs["Roughness"].default_value = roughness
    return mat


def _hair_material(rng: random.Random, colour: tuple[float, float, float]) -> bpy.types.Material:
    mat = bpy.data.materials.new("hair")
    mat.use_nodes = True
    nodes = mat.node_tree.nodes
    nodes.clear()
    out = nodes.new("ShaderNodeOutputMaterial")
    hair = nodes.new("ShaderNodeBsdfHairPrincipled")
    if rng.random() < 0.5:  # melanin: the browns, blacks and blonds of real fur
        hair.parametrization = "MELANIN"
        hair.inputs["Melanin"].default_value = rng.uniform(0.05, 1.0)
        hair.inputs["Melanin Redness"].default_value = rng.uniform(0.0, 1.0)
    else:  # a dyed or synthetic colour
        hair.parametrization = "COLOR"
        hair.inputs["Color"].default_value = (*colour, 1.0)
    hair.inputs["Roughness"].default_value = rng.uniform(0.15, 0.6)
    mat.node_tree.links.new(hair.outputs[0], out.inputs[0])
    return mat


def _colour(rng: random.Random) -> tuple[float, float, float]:
    hue, sat, val = rng.random(), rng.uniform(0.0, 0.9), rng.uniform(0.05, 0.9)
    return colorsys.hsv_to_rgb(hue, sat, val)


def _body(rng: random.Random) -> bpy.types.Object:
    kind = rng.choice(("sphere", "cube", "torus", "cylinder", "blob"))
    if kind == "sphere" or kind == "blob":
        bpy.ops.mesh.primitive_uv_sphere_add(radius=1.0, segments=48, ring_count=24)
    elif kind == "cube":
        bpy.ops.mesh.primitive_cube_add(size=1.6)
    elif kind == "torus":
        bpy.ops.mesh.primitive_torus_add(major_radius=1.0, minor_radius=rng.uniform(0.2, 0.5))
    else:
        bpy.ops.mesh.primitive_cylinder_add(radius=0.6, depth=2.0)
    body = bpy.context.object
    if kind == "blob":
        tex = bpy.data.textures.new("lumps", "CLOUDS")
        tex.noise_scale = rng.uniform(0.4, 1.2)
        lumps = body.modifiers.new("lumps", "DISPLACE")
        lumps.texture, lumps.strength = tex, rng.uniform(0.2, 0.8)
    body.scale = (rng.uniform(0.5, 1.4), rng.uniform(0.5, 1.4), rng.uniform(0.5, 1.4))
    body.rotation_euler = (rng.uniform(0, math.pi), rng.uniform(0, math.pi), rng.uniform(0, math.pi))
    return body


def _fur(rng: random.Random, body: bpy.types.Object, colour: tuple[float, float, float]) -> None:
    style = rng.choice(("fur", "wisps", "curls", "strands"))
    settings = body.modifiers.new("hair", "PARTICLE_SYSTEM").particle_system.settings
    settings.type = "HAIR"
    settings.count = rng.randint(300, 2500) if style != "fur" else rng.randint(1500, 5000)
    settings.hair_length = {"fur": rng.uniform(0.1, 0.4), "wisps": rng.uniform(0.4, 1.2),
                            "curls": rng.uniform(0.3, 0.8), "strands": rng.uniform(0.8, 2.0)}[style]
    settings.child_type = "INTERPOLATED"
    settings.rendered_child_count = rng.randint(3, 25)
    settings.child_length = rng.uniform(0.6, 1.0)
    settings.roughness_1 = rng.uniform(0.0, 0.1)
    settings.roughness_2 = rng.uniform(0.0, 0.4)
    settings.roughness_endpoint = rng.uniform(0.0, 0.1)
    settings.clump_factor = rng.uniform(-0.3, 0.8)
    settings.use_advanced_hair = True
    settings.effect_hair = rng.uniform(0.0, 0.6)  # droop under gravity
    if style == "curls":
        settings.kink = "CURL"
        settings.kink_amplitude = rng.uniform(0.05, 0.3)
        settings.kink_frequency = rng.uniform(2.0, 8.0)
    elif style == "wisps" and rng.random() < 0.5:
        settings.kink = "WAVE"
        settings.kink_amplitude = rng.uniform(0.05, 0.2)
    settings.root_radius = 1.0
    settings.tip_radius = rng.uniform(0.0, 0.5)
    settings.radius_scale = rng.uniform(0.003, 0.02)  # strands of a pixel or less, up to a few
    body.data.materials.append(_material("body", colour, rng.uniform(0.3, 0.9)))
    body.data.materials.append(_hair_material(rng, colour))
    settings.material = 2
    body.show_instancer_for_render = rng.random() < 0.7  # else only the hairs: wisps with no skin


def _veil(rng: random.Random, colour: tuple[float, float, float]) -> None:
    bpy.ops.mesh.primitive_grid_add(x_subdivisions=160, y_subdivisions=160, size=2.6)
    sheet = bpy.context.object
    tex = bpy.data.textures.new("folds", rng.choice(("CLOUDS", "WOOD", "MARBLE")))
    tex.noise_scale = rng.uniform(0.2, 1.0)
    folds = sheet.modifiers.new("folds", "DISPLACE")
    folds.texture, folds.strength = tex, rng.uniform(0.1, 0.6)
    sheet.rotation_euler = (rng.uniform(1.2, 1.9), rng.uniform(-0.4, 0.4), rng.uniform(0, math.pi))
    sheet.scale = (rng.uniform(0.5, 1.0), rng.uniform(0.5, 1.0), 1.0)
    mat = bpy.data.materials.new("veil")
    mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    surface = nodes["Principled BSDF"]
    surface.inputs["Base Color"].default_value = (*colour, 1.0)
    surface.inputs["Roughness"].default_value = rng.uniform(0.3, 1.0)
    clear = nodes.new("ShaderNodeBsdfTransparent")
    mix = nodes.new("ShaderNodeMixShader")
    out = nodes["Material Output"]
    if rng.random() < 0.5:  # a pattern in the fabric: lace, weave, print
        pattern = nodes.new(rng.choice(("ShaderNodeTexNoise", "ShaderNodeTexVoronoi", "ShaderNodeTexWave")))
        pattern.inputs["Scale"].default_value = rng.uniform(3.0, 40.0)
        ramp = nodes.new("ShaderNodeValToRGB")
        ramp.color_ramp.elements[0].position = rng.uniform(0.2, 0.5)
        ramp.color_ramp.elements[1].position = rng.uniform(0.5, 0.8)
        ramp.color_ramp.elements[0].color = (rng.uniform(0.0, 0.4),) * 3 + (1.0,)
        ramp.color_ramp.elements[1].color = (rng.uniform(0.6, 0.97),) * 3 + (1.0,)
        links.new(pattern.outputs[0], ramp.inputs[0])
        links.new(ramp.outputs[0], mix.inputs[0])
    else:  # an even transparency
        mix.inputs[0].default_value = rng.uniform(0.3, 0.95)
    links.new(surface.outputs[0], mix.inputs[1])
    links.new(clear.outputs[0], mix.inputs[2])
    links.new(mix.outputs[0], out.inputs[0])
    sheet.data.materials.append(mat)


def _light(rng: random.Random, scene: bpy.types.Scene) -> None:
    sun = bpy.data.objects.new("sun", bpy.data.lights.new("sun", "SUN"))
    sun.data.energy = rng.uniform(0.5, 2.5)
    sun.data.color = (rng.uniform(0.8, 1.0), rng.uniform(0.8, 1.0), rng.uniform(0.8, 1.0))
    sun.rotation_euler = (rng.uniform(0.0, 1.4), rng.uniform(-1.0, 1.0), rng.uniform(0, 2 * math.pi))
    scene.collection.objects.link(sun)
    area = bpy.data.objects.new("rim", bpy.data.lights.new("rim", "AREA"))
    area.data.energy = rng.uniform(20.0, 200.0)
    area.data.size = rng.uniform(0.5, 3.0)
    area.location = (rng.uniform(-4, 4), rng.uniform(1, 5), rng.uniform(-2, 4))  # often behind: rim light on fur
    area.rotation_euler = (math.atan2(math.hypot(area.location[0], area.location[1]), area.location[2]), 0.0,
                           math.atan2(area.location[1], area.location[0]) + math.pi / 2)
    scene.collection.objects.link(area)
    world = bpy.data.worlds.new("world")
    world.use_nodes = True
    background = world.node_tree.nodes["Background"]
    background.inputs["Color"].default_value = (*(rng.uniform(0.05, 0.6) for _ in range(3)), 1.0)
    background.inputs["Strength"].default_value = rng.uniform(0.3, 1.5)
    scene.world = world


def _camera(rng: random.Random, scene: bpy.types.Scene) -> None:
    cam = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
    distance = rng.uniform(3.2, 6.5)  # the object fills about a third to the whole frame, at times cut off
    cam.location = (rng.uniform(-0.6, 0.6), -distance, rng.uniform(-0.6, 0.6))
    cam.rotation_euler = (math.pi / 2 + rng.uniform(-0.1, 0.1), 0.0, rng.uniform(-0.1, 0.1))
    cam.data.lens = rng.uniform(35.0, 85.0)
    if rng.random() < 0.25:  # out of focus: soft edges as on a real plate
        cam.data.dof.use_dof = True
        cam.data.dof.focus_distance = distance * rng.uniform(0.6, 1.5)
        cam.data.dof.aperture_fstop = rng.uniform(1.4, 4.0)
    scene.collection.objects.link(cam)
    scene.camera = cam


def render(seed: int, out: str, size: int, samples: int) -> None:
    rng = random.Random(seed)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_denoising = False  # Debian's Blender has no OpenImageDenoise; noise is no harm here
    scene.cycles.seed = seed
    scene.render.film_transparent = True
    scene.render.resolution_x = scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    settings = scene.render.image_settings
    settings.file_format, settings.color_mode, settings.color_depth = "OPEN_EXR", "RGBA", "16"
    colour = _colour(rng)
    if rng.random() < 0.75:
        _fur(rng, _body(rng), colour)
    else:
        _veil(rng, colour)
    _light(rng, scene)
    _camera(rng, scene)
    scene.render.filepath = out
    bpy.ops.render.render(write_still=True)


if __name__ == "__main__":
    args = sys.argv[sys.argv.index("--") + 1:]
    render(int(args[0]), args[1], int(args[2]), int(args[3]))
