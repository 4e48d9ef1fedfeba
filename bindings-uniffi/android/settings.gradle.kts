pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositories {
        google()
        mavenCentral()
    }
}

// The AAR is named after the project: build/outputs/aar/sixcast-release.aar.
rootProject.name = "sixcast"
